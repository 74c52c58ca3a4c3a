"""Model runtimes: ONNX Runtime sessions described by model cards. numpy in, numpy/notes out.

Never imports torch: training and export live in `engine.training`.
"""
