"""Small utilities the other layers share, each knowing nothing of the project's other folders: paths,
files written whole (``atomic``), fingerprints, Ctrl-C and SIGTERM (``interrupts``), timing sections,
the command lines' one-line errors (``cli``), the job log's handler (``logfile``)."""
