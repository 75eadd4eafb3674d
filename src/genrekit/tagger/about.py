"""What the tagger is, where its weights come from, and on what terms (``genrekit tags --about``)."""

from __future__ import annotations

ABOUT: str = """\
genrekit tags: a NumPy port of musicnn, pretrained deep music taggers
======================================================================

Models
  msd  MSD_musicnn: trained on the Million Song Dataset with its Last.fm tags (50 tags: genres
       such as rock, jazz, electronic, Hip-Hop, House; moods; eras such as 80s).
  mtt  MTT_musicnn: trained on MagnaTagATune (50 tags: genres, instruments, voice, tempo, mood).
  Both give a taggram (tag probabilities per 2.99-s patch), file-level tags (the mean of the
  taggram) and 200-dimensional embeddings (the penultimate layer) per patch.

Authors and licence
  musicnn 0.1.0 by Jordi Pons and Xavier Serra, Music Technology Group, Universitat Pompeu Fabra
  (https://github.com/jordipons/musicnn). Code and weights are under the ISC licence,
  Copyright (c) Music Technology Group, Universitat Pompeu Fabra 2019.
  Cite: J. Pons and X. Serra, "musicnn: pre-trained convolutional neural networks for music
  audio tagging", late-breaking/demo session of ISMIR 2019 (arXiv:1909.06654).

Training data and its terms
  MagnaTagATune (Law et al., ISMIR 2009): clips from the Magnatune label with TagATune game
  annotations, licensed under Creative Commons Attribution-NonCommercial-ShareAlike 3.0.
  Million Song Dataset (Bertin-Mahieux et al., ISMIR 2011) with the Last.fm tag dataset, made
  available for non-commercial research. Check these terms yourself before using the tags or
  embeddings commercially.

Weights
  genrekit does not ship or redistribute them. On first use it runs
  `python -m pip download musicnn==0.1.0 --no-deps` (your pip configuration applies), or reads the
  wheel, package folder or checkpoint you name with --weights; it checks the SHA-256 of the
  checkpoint files, reads them without TensorFlow and keeps a converted copy (safetensors + JSON)
  in your user cache folder ($GENREKIT_TAGGER_DIR overrides it). Nothing leaves your machine.
"""
"""The text ``genrekit tags --about`` prints."""
