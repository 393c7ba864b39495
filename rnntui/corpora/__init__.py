"""Corpora: the contract (``Corpus``, which plugins import from here), the built-in corpora (``builtin``, registered
through the ``register_corpora`` hook like any plugin's), reading text (``sources``, ``decoding``), the encoded-text
cache (``textcache``), the catalogue of downloadable corpora and its verified downloads, and the synthetic probes.
How to write a corpus plugin: README.md, "Write a cell plugin", "A corpus plugin".

Built in:
- ``python-docs``: the Python language reference shipped with CPython (pydoc_data.topics); the default.
- ``python-stdlib``: the standard library's source code (option ``max_chars`` caps its size).
- the probes ``hello``, ``brackets``, ``copy``, ``arithmetic`` (rnntui.corpora.synthetic);
- the catalogue's downloadable corpora (corpora/catalogue.toml), usable once fetched or added by hand;
- the files and directories a user registered with ``rnntui corpora add NAME PATH``.
"""

from rnntui.corpora.corpus import Corpus

DEFAULT_CORPUS = "python-docs"

__all__ = ["DEFAULT_CORPUS", "Corpus"]
