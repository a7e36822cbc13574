"""Serving a model: a small web app to draw a digit and see what the model predicts.

>>> from tinygrad_mnist.app.serve import load_predictor, make_server
>>> server = make_server(load_predictor("runs/my-run"), port=0)   # doctest: +SKIP
>>> server.serve_forever()                                        # doctest: +SKIP
"""
from .server import (EMPTY_DRAWING, MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_SIDE,
                     REQUEST_TIMEOUT, DigitServer, Predictor, RequestError, load_predictor,
                     make_server, parse_request, predict_drawing, serve, serve_run)

__all__ = ["make_server", "serve", "serve_run", "load_predictor", "DigitServer", "Predictor",
           "parse_request", "predict_drawing", "RequestError", "EMPTY_DRAWING", "MAX_SIDE",
           "MAX_BODY_BYTES", "MAX_HEADER_BYTES", "REQUEST_TIMEOUT"]
