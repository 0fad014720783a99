"""The file MLflow runs to build the pyfunc model ("models from code"); see :mod:`softmax_exp.serving`.

It is copied into every logged model and run at load time, so it only sets the model: importing
``softmax_exp.serving`` itself never touches MLflow's global model slot.
"""

import mlflow

from softmax_exp.serving import ClassifierPyfunc

mlflow.models.set_model(ClassifierPyfunc())
