"""Serve the book's ``common`` package from fastconv, unmodified scripts included.

The book's scripts do ``sys.path.append(os.pardir)`` and then ``from common.layers import *``.
:func:`install` puts an import finder first on ``sys.meta_path`` so that

* ``common.util``, ``common.layers``, ``common.functions``, ``common.gradient``,
  ``common.optimizer`` and ``common.trainer`` are thin modules over the fastconv modules: the
  same class and function objects (so classes compare equal whichever name imported them),
  and ``from common.layers import *`` gives every name the book's module gives, ``np``
  included (the book's modules have no ``__all__``, so their imports travel with ``*``);
* ``common`` itself is a package object whose ``__path__`` lists the book's ``common/``
  folders found on ``sys.path``, so the book's other modules (``common.multi_layer_net``,
  ``common.np`` ...) still load from the book's folder and in turn get fastconv's layers;
  the book's ``common/__init__.py`` is not run;
* the book's own network files (``ch07/simple_convnet.py``, ``ch08/deep_convnet.py``,
  ``ch05/two_layer_net.py``, ``common/multi_layer_net.py``, ``common/multi_layer_net_extend.py``)
  run as usual, but their class is replaced by fastconv's book-faithful one
  (:mod:`fastconv.models.book`, :mod:`fastconv.models`), which runs fused passes. Only a
  file whose code (comments and docstrings left out) is one of the book's editions is
  served so (:data:`BOOK_NETWORKS`); a modified copy runs as written;
* optionally ``dataset.mnist`` serves fastconv's MNIST loader, but only when the ``dataset``
  package being imported is the book's (a folder with a ``mnist.py``): the book's loader
  downloads from a dead mirror into its own folder and unpickles without checks, fastconv's
  verifies SHA-256 digests and caches in ``$FASTCONV_DATA`` or ``~/.cache/fastconv``.

:func:`run_script` runs a script as ``python script.py`` would, after :func:`install`.
"""
import ast
import builtins
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import os
import sys
import types

__all__ = ["install", "uninstall", "installed", "run_script", "code_fingerprint", "PROVIDED",
           "BOOK_IMPORTS", "BOOK_NETWORKS"]

# book module name -> fastconv module serving it
PROVIDED = {
    "common.util": "fastconv.util",
    "common.layers": "fastconv.layers",
    "common.functions": "fastconv.functions",
    "common.gradient": "fastconv.gradient",
    "common.optimizer": "fastconv.optimizer",
    "common.trainer": "fastconv.trainer",
}
_MNIST = ("dataset.mnist", "fastconv.datasets.mnist")

# The import lines at the top of each book module, run in the served module: with no
# ``__all__`` in the book, ``from M import *`` hands these names on to the script too.
BOOK_IMPORTS = {
    "common.util": "import numpy as np",
    "common.functions": "import numpy as np",
    "common.gradient": "import numpy as np",
    "common.optimizer": "import numpy as np",
    "common.layers": ("import numpy as np\n"
                      "from common.functions import *\n"
                      "from common.util import im2col, col2im"),
    "common.trainer": ("import sys, os\n"
                       "import numpy as np\n"
                       "from common.optimizer import *"),
    "dataset.mnist": ("import urllib.request\n"
                      "import os.path\n"
                      "import gzip\n"
                      "import pickle\n"
                      "import os\n"
                      "import numpy as np"),
}


def _book_dirs(package):
    """Absolute folders named ``package`` in the entries of ``sys.path``, in order."""
    found = []
    for entry in sys.path:
        if not isinstance(entry, str):
            continue
        candidate = os.path.abspath(os.path.join(entry or os.curdir, package))
        if os.path.isdir(candidate) and candidate not in found:
            found.append(candidate)
    return found


# fingerprint of a book file's code (see code_fingerprint) -> the class fastconv serves for it;
# the Japanese (oreilly-japan) and Korean (WegraLee) repositories' current files
BOOK_NETWORKS = {
    "b6a7be563ad98242": ("SimpleConvNet", "fastconv.models.book"),  # ch07, ja
    "13d36d9638baaf65": ("SimpleConvNet", "fastconv.models.book"),  # ch07, ko
    "e1586a302bb710e2": ("DeepConvNet", "fastconv.models.book"),  # ch08, ja
    "7cfcb0045db17860": ("DeepConvNet", "fastconv.models.book"),  # ch08, ko
    "5007f2a218a5d29b": ("TwoLayerNet", "fastconv.models.two_layer_net"),  # ch05, ja
    "b4ebcd6bc32a6bb4": ("TwoLayerNet", "fastconv.models.two_layer_net"),  # ch05, ko
    "12dc54818e067564": ("MultiLayerNet", "fastconv.models.multi_layer_net"),  # ja
    "a918bf260e6111c2": ("MultiLayerNet", "fastconv.models.multi_layer_net"),  # ko
    "320ff3b98a542c01": ("MultiLayerNetExtend", "fastconv.models.multi_layer_net"),  # ja
    "52095e606c47fdee": ("MultiLayerNetExtend", "fastconv.models.multi_layer_net"),  # ko
}
_NETWORK_MODULES = ("simple_convnet", "deep_convnet", "two_layer_net",
                    "common.multi_layer_net", "common.multi_layer_net_extend")


def code_fingerprint(source):
    """First 16 hex digits of the SHA-256 of a Python file's syntax tree without docstrings
    (comments and layout are not in the tree): the editions' translations compare equal."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            node.body = [stmt for stmt in body
                         if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                                 and isinstance(stmt.value.value, str))] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


def _served_network(spec):
    """(class name, fastconv module) when ``spec`` is one of the book's network files."""
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    try:
        with open(spec.origin, "rb") as f:
            return BOOK_NETWORKS.get(code_fingerprint(f.read()))
    except (OSError, SyntaxError, ValueError):
        return None  # the ordinary loader then reports the book file's own problem


class _NetworkLoader(importlib.abc.Loader):
    """Runs the book's network file as usual, then puts fastconv's class in place of its."""

    def __init__(self, loader, class_name, target):
        self.loader = loader
        self.class_name = class_name
        self.target = target

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        served = getattr(importlib.import_module(self.target), self.class_name)
        setattr(module, self.class_name, served)


def _book_mnist_names(module, book_dir):
    """The module-level names of the book's dataset/mnist.py that are not imports."""
    load_mnist = module.load_mnist

    def init_mnist():
        """Fetch MNIST into fastconv's cache (the book's writes mnist.pkl next to itself)."""
        load_mnist()

    module.__dict__.update(
        url_base="https://ossci-datasets.s3.amazonaws.com/mnist/",
        key_file={"train_img": "train-images-idx3-ubyte.gz",
                  "train_label": "train-labels-idx1-ubyte.gz",
                  "test_img": "t10k-images-idx3-ubyte.gz",
                  "test_label": "t10k-labels-idx1-ubyte.gz"},
        dataset_dir=book_dir, save_file=book_dir + "/mnist.pkl",
        train_num=60000, test_num=10000, img_dim=(1, 28, 28), img_size=784,
        init_mnist=init_mnist, download_mnist=init_mnist)


class _AliasLoader(importlib.abc.Loader):
    """Loads a book module name as a thin module over a fastconv module.

    The served module holds the fastconv module's public names (the same objects), then runs
    the book module's import lines; its ``__all__`` lists both, so a star import gives what
    the book's gives while fastconv's own ``__all__`` stays as it is for direct users. Other
    attributes are looked up on the fastconv module.
    """

    def __init__(self, target, book_dir=None):
        self.target = target
        self.book_dir = book_dir

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        target = importlib.import_module(self.target)
        module.__doc__ = target.__doc__
        module.__getattr__ = lambda name: getattr(target, name)
        module.__dict__.update({name: getattr(target, name) for name in target.__all__})
        own = set(module.__dict__)
        exec(BOOK_IMPORTS[module.__name__], module.__dict__)
        if self.book_dir is not None:
            _book_mnist_names(module, self.book_dir)
        added = [n for n in module.__dict__ if n not in own and not n.startswith("_")]
        module.__all__ = list(target.__all__) + added


class _CommonLoader(importlib.abc.Loader):
    """Creates the ``common`` package without running the book's ``__init__.py``."""

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__doc__ = ("The book's common package, served by fastconv (fastconv.install); "
                          "other modules load from: " + ", ".join(module.__path__))


class _Finder(importlib.abc.MetaPathFinder):
    def __init__(self, dataset):
        self.dataset = dataset

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "common":
            spec = importlib.machinery.ModuleSpec("common", _CommonLoader(), is_package=True)
            spec.submodule_search_locations = _book_dirs("common")
            return spec
        if fullname in PROVIDED:
            return importlib.machinery.ModuleSpec(fullname, _AliasLoader(PROVIDED[fullname]))
        if fullname.startswith("common."):
            common = sys.modules.get("common")
            if common is not None:
                # the book folder may have joined sys.path after `common` was imported
                # (sys.path.append(os.pardir) in the script); refresh it in place
                for d in _book_dirs("common"):
                    if d not in common.__path__:
                        common.__path__.append(d)
        if fullname in _NETWORK_MODULES:
            spec = importlib.machinery.PathFinder.find_spec(fullname, path)
            served = _served_network(spec)
            if served is not None:
                spec.loader = _NetworkLoader(spec.loader, *served)
                return spec
            return None  # the ordinary path finder looks in common.__path__ and sys.path
        if self.dataset and fullname == _MNIST[0] and path is not None:
            # only the book's dataset package: one that has a mnist.py
            for d in path:
                if os.path.isfile(os.path.join(d, "mnist.py")):
                    return importlib.machinery.ModuleSpec(fullname, _AliasLoader(_MNIST[1], d))
        return None


def installed():
    """Whether :func:`install` is in effect."""
    return any(isinstance(f, _Finder) for f in sys.meta_path)


def _forget_modules():
    # drop modules already imported under the book's names so the next import is served anew
    names = [n for n in sys.modules if n == "common" or n.startswith("common.")]
    names += [n for n in (_MNIST[0],) if n in sys.modules]
    for name in names:
        del sys.modules[name]
    parent = sys.modules.get("dataset")
    if parent is not None and hasattr(parent, "mnist"):
        try:
            delattr(parent, "mnist")
        except AttributeError:
            pass


def install(dataset=True):
    """Make ``import common.<module>`` resolve to fastconv, as described in this module.

    Parameters
    ----------
    dataset : bool, default True
        Also serve the book's ``dataset.mnist`` with :func:`fastconv.datasets.load_mnist`.

    Notes
    -----
    Idempotent. Modules already imported under ``common`` are forgotten (names bound to them
    earlier keep the old objects), so call it before the script's imports.
    """
    uninstall()
    _forget_modules()
    sys.meta_path.insert(0, _Finder(dataset))
    importlib.invalidate_caches()


def uninstall():
    """Undo :func:`install`: remove the finder and forget the served modules."""
    was = installed()
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _Finder)]
    if was:
        _forget_modules()


def run_script(path, args=(), dataset=True):
    """Run a book script as ``python path args...`` would, with fastconv serving ``common``.

    ``sys.argv`` becomes ``[path, *args]``, ``sys.path[0]`` the script's folder, the script
    runs as ``__main__`` and the working directory is left as it is (the book's scripts
    expect to be started from their chapter folder).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such script: {path}")
    install(dataset=dataset)
    sys.argv = [path, *args]
    script_dir = os.path.dirname(os.path.abspath(path))
    if sys.path and sys.path[0] in ("", os.getcwd()):
        sys.path[0] = script_dir  # what `python path` puts there (python -m put the cwd)
    else:
        sys.path.insert(0, script_dir)
    # as `python path`: argv[0] as typed, but __file__ and traceback lines absolute (3.9+)
    filename = os.path.abspath(path)
    with open(filename, "rb") as f:
        code = compile(f.read(), filename, "exec")
    main = types.ModuleType("__main__")
    main.__file__ = filename
    main.__builtins__ = builtins
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main  # pickle finds the script's classes, as under python
    try:
        exec(code, main.__dict__)
    finally:
        sys.modules["__main__"] = saved

