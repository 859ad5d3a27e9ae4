"""The book's convolutional networks on fastconv's layers.

``SimpleConvNet`` (ch07) and ``DeepConvNet`` (ch08) with the book's constructors, ``params``
keys, methods and initial-weight draws; ``load_params`` reads the book's params files without
executing code from them.
"""
from ._params import ParamsFileError, load_params_file, save_params_file
from .deep_convnet import DeepConvNet
from .simple_convnet import SimpleConvNet

__all__ = ["SimpleConvNet", "DeepConvNet", "MODELS", "ParamsFileError", "load_params_file",
           "save_params_file"]

# command-line names (``fastconv train --model deep``)
MODELS = {"simple": SimpleConvNet, "deep": DeepConvNet}
