"""`Tensor`'s methods by concern (see `base.py`); tensor.py composes them."""
