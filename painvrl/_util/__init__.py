"""Private helpers shared by every part of painvrl (not public API).

* ``validation``: input checks with messages that name the function and the parameter.
* ``progress``: tqdm progress bars, notebook-aware only when one is shown.
* ``interrupt``: Ctrl-C held until the current unit of work ends.
* ``modelfile``: versioned, checksummed model files written atomically (``ModelFileError``).
"""
