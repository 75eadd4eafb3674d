"""Pretrained deep music taggers (musicnn, MTT and MSD) in NumPy: tags, taggrams, embeddings.

No TensorFlow or PyTorch: the weights of musicnn 0.1.0 are obtained with pip on first use (or
from a file the user names), read from their TensorFlow checkpoint by :mod:`.checkpoint`,
converted into the user cache (:mod:`.weights`) and run by :mod:`.network` on the log-mel
input of :mod:`.frontend`. See :data:`ABOUT` for origin and licence.

Examples
--------
>>> from genrekit.tagger import Tagger                         # doctest: +SKIP
>>> Tagger("mtt").tag_file("song.mp3").top(5)                  # doctest: +SKIP
"""

from __future__ import annotations

from genrekit.tagger.about import ABOUT
from genrekit.tagger.model import TAGGERS, Tagger, TagResult, tag_file, tag_signal, tags_record

__all__ = ["ABOUT", "TAGGERS", "TagResult", "Tagger", "tag_file", "tag_signal", "tags_record"]
