"""What a linear classifier sees of an image: the raw pixels (the course's preprocessing, the default) or a
feature stage fitted on the training images (``features=hog_color``: the course's HOG + hue histogram).

- :mod:`.settings`: the ``features`` config group's schemas (``FEATURES``), each ``build()``-ing its stage;
- :mod:`.stage`: the :class:`FeatureStage` protocol (fit on the training split, transform any images, its
  fitted state as arrays that the data cache and the logged model keep);
- :mod:`.hog`, :mod:`.color_histogram`: the course's HOG and hue histogram, in Numba;
- :mod:`.hog_color`: the stage made of them.

This package knows nothing of the loaders, Hydra or MLflow; a logged model bundles it.
"""
