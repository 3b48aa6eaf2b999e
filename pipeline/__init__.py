"""pipeline: from recordings to pose kernels, and from kernels and 2D detections to voxel features.

The same code serves synthetic and real data. Each module says what it does and lists its public
names in ``__all__``; the deconvolution, the 2D detector model and the synthetic store's contract
live in ``simulator`` (generation needs them) and are re-exported under their ``pipeline.`` paths.
"""
