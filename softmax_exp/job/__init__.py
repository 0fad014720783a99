"""One training job, from a checked config to a tracked run: what it is handed and gives back (``context``),
what it leaves in files (``artifacts``), and the training itself (``fit``). No Hydra here: the entrypoint,
a sweep's jobs, ``reproduce`` and the benchmark all call :func:`softmax_exp.job.fit.fit`."""
