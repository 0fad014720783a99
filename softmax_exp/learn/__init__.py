"""The learning core: the hyperparameters of a training, the optimizers and schedules, the minibatch SGD
loop, the classifier with its files, training checkpoints, and the gradient check. It knows nothing of
Hydra or MLflow: numpy, numba (through ``softmax_exp.kernels``) and ``softmax_exp.util`` only. A logged
MLflow model bundles this folder (softmax_exp.tracking.logged_model)."""
