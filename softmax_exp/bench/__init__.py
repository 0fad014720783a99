"""Benchmark of the softmax kernels and of the trainings around them: ``python -m softmax_exp.bench``.

Every time is the median over repeats, and every row is also given as a ratio to a reference measured in the
same process, on the same array: for a full pass, the *read floor* is one numpy pass over X
(``X.sum(axis=0)``), the least any loss-and-gradient must do. Ratios, not milliseconds, are what carry from
one run to another on a shared, noisy machine.

Sections (``--sections``), one module a kind (``kernels``, ``pipeline``; ``measure`` times every row):
  kernels    loss + gradient over all of X, per kernel and dtype, vs the read floor
  minibatch  loss + gradient of a minibatch of rows: ``X[idx]`` copy + kernel, vs the fused kernel with idx
  step       one SGD step (sample idx, loss + gradient, update W) of the numpy reference vs the fused kernel
  predict    labels argmax(X @ W) and the count of correct ones over all of X: numpy vs the Numba kernel, vs
             the read floor
  features   the course's HOG and hue histogram of all 60000 CIFAR-10 images, and the hog_color stage as a
             training runs it, vs one read of the pixels (images/s)
  kmeans     the k-means features: the fit, the extraction vs an sgemm of the same FLOPs, a model's
             prediction of 1 and 100 raw images
  tracking   9 trainings of 1500 iterations with full MLflow tracking vs tracking.enabled=false, on a
             CIFAR-10-shaped training set (random images in the official format) and on digits
  train      ``python -m softmax_exp.train`` on digits, wall time with a warm Numba cache
  sweep      the course's 3 x 3 grid end to end, tracked and untracked, with where its time goes (imports,
             config composition, the MLflow store, data, SGD, evaluation, tracking, pictures, the model);
             CIFAR-10-shaped random images or ``--data DIR``; the same grid on digits
"""
