"""Pictures of a training, one module a picture: ``weights`` (the course's class templates), ``loss`` (the
loss curve), ``heatmap`` (a sweep's val_acc over lr x reg); ``ticks`` and ``pillow`` are what they share.

The two pictures of every run are drawn with Pillow (a few milliseconds, a fixed pixel size); the sweep's
map, once per sweep, with matplotlib's Agg canvas, imported only then.
"""
