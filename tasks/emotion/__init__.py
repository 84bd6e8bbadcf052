"""The emotion task: a FER2013 CNN searched with KerasTuner, selected on PublicTest, reported once on
PrivateTest, and shipped as ``.h5`` + JSON card + TFLite for ``live``.

``config.py`` holds its options and the search's (no TensorFlow, for ``fit emotion --help``),
``preprocessing.py`` the face preprocessing ``live`` shares, ``model.py`` the network and its layers,
``task.py`` the task, ``search.py`` the search, ``evaluation.py`` the scores, ``export.py`` the
shipped files, ``__main__.py`` ``python -m tasks.emotion``. It may import ``common``, ``callbacks``,
``trainer`` and ``data``; no other task.
"""
