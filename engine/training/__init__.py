"""The PyTorch side: datasets, modules, training loops, ONNX export, evaluation.

The only package that imports torch. Install with `pip install -e '.[train]'`.
"""
