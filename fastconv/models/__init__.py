"""The book's networks on fastconv's layers.

``SimpleConvNet`` (ch07) and ``DeepConvNet`` (ch08), ``TwoLayerNet`` (ch05), ``MultiLayerNet``
and ``MultiLayerNetExtend`` (common/) with the book's constructors, ``params`` keys, methods
and initial-weight draws; ``load_params`` reads the book's params files without executing
code from them.
"""
from ._params import ParamsFileError, load_params_file, save_params_file
from .deep_convnet import DeepConvNet
from .multi_layer_net import MultiLayerNet, MultiLayerNetExtend
from .simple_convnet import SimpleConvNet
from .two_layer_net import TwoLayerNet

__all__ = ["SimpleConvNet", "DeepConvNet", "TwoLayerNet", "MultiLayerNet", "MultiLayerNetExtend",
           "MODELS", "ParamsFileError", "load_params_file", "save_params_file"]

# command-line names (``fastconv train --model deep``)
MODELS = {"simple": SimpleConvNet, "deep": DeepConvNet}
