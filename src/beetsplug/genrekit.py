"""beets plugin: the genre of each track from its audio, offline, with genrekit.

Enable it in beets' ``config.yaml``::

    plugins: genrekit
    genrekit:
        auto: no            # yes: run on every imported item
        model: shipped      # shipped, learned (needs db:) or a model folder
        db: ""              # a genrekit catalogue, for model: learned
        force: no           # yes: replace genres items already have
        workers: 1          # files decoded at once
        min_confidence: 0.5 # below it an item is "uncertain" and gets no genre
        tag_names: library  # Hip-Hop, Jazz ... (see genrekit's tag names)

``beet genrekit [QUERY]`` sets beets' genre field (the multi-valued ``genres``
where the installed beets has it, else ``genre``) of every matching item that has
none, with the same rules as ``genrekit library tag`` (one decision,
:func:`genrekit.library.tagging.decide`, one spelling,
:func:`genrekit.library.tags.tag_namer`), and the flexible attributes
``genrekit_genre``, ``genrekit_confidence`` and ``genrekit_model``. Files are
written by beets itself (its ``import.write`` setting), so its database and the
files agree. ``-p/--pretend`` prints ``existing -> proposed`` and changes nothing;
a second run changes nothing (items genrekit already judged with the same model
are skipped).
"""

from __future__ import annotations

import os

from beets import ui
from beets.plugins import BeetsPlugin


class GenrekitPlugin(BeetsPlugin):
    """``beet genrekit``: genres from the audio with genrekit's models."""

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        from genrekit.models.calibrate import DEFAULT_MIN_CONFIDENCE

        self.config.add(
            {
                "auto": False,
                "model": "shipped",
                "db": "",
                "force": False,
                "workers": 1,
                "min_confidence": DEFAULT_MIN_CONFIDENCE,
                "tag_names": "library",
            }
        )
        if self.config["auto"].get(bool):
            self.import_stages = [self.imported]

    def commands(self) -> list:
        """Return ``beet genrekit``."""
        command = ui.Subcommand("genrekit", help="set genres from the audio, offline (genrekit)")
        parser = command.parser
        parser.add_option(
            "-p", "--pretend", action="store_true", help="show what would change, change nothing"
        )
        parser.add_option("-f", "--force", action="store_true", help="also replace genres items already have")
        parser.add_option("-m", "--model", help="shipped, learned (genrekit: db) or a model folder")
        parser.add_option("-w", "--workers", type="int", help="files decoded at once")
        command.func = self.command
        return [command]

    def command(self, lib, opts, args) -> None:
        """Run ``beet genrekit [QUERY]``."""
        if opts.model:
            self.config["model"] = opts.model
        if opts.workers:
            self.config["workers"] = opts.workers
        force = bool(opts.force) or self.config["force"].get(bool)
        items = list(lib.items(args))
        self.tag_items(items, force, pretend=bool(opts.pretend), write=ui.should_write(), say=ui.print_)

    def imported(self, session, task) -> None:
        """Import stage: tag the items just imported (beets writes the files if it is set to)."""
        self.tag_items(task.imported_items(), self.config["force"].get(bool), pretend=False, write=False)

    def tag_items(self, items: list, force: bool, pretend: bool, write: bool, say=None) -> None:
        """Predict and set the genre of every item that needs one; tell each decision and the counts.

        Parameters
        ----------
        items : list of beets Item
            The items.
        force : bool
            Replace genres items have, and judge again items this model judged.
        pretend : bool
            Change nothing.
        write : bool
            Write changed items' files too (beets' ``item.try_write``).
        say : callable, optional
            Prints a line for people (the plugin's log when None).
        """
        from dataclasses import replace

        from genrekit.library.tagging import count, describe, summary

        say = say or self._log.info
        model, model_id = self._model()
        todo = [item for item in items if force or item.get("genrekit_model") != model_id]
        results = {}
        paths = [os.fsdecode(item.path) for item in todo if not self._has_genre(item) or force]
        workers = self.config["workers"].get(int)
        for path, result in model.predict_files(paths, jobs=max(1, workers)):
            results[os.fsdecode(path)] = result
        decisions = []
        for item in todo:
            decision = self._decide(item, results, model_id, force)
            if not pretend and self._apply(item, decision, model_id, write) and decision.action == "write":
                decision = replace(decision, action="written")
            say(describe(decision))
            decisions.append(decision)
        skipped = len(items) - len(todo)
        note = f"; {skipped} already judged by this model" if skipped else ""
        say(f"genrekit: {summary(count(decisions), pretend)}{note}")

    def _model(self):
        """Load the configured model; return it and its id."""
        from genrekit.library.catalogue import model_id
        from genrekit.prediction.model import load_model

        name = self.config["model"].as_str()
        if name == "learned":
            from genrekit.library.learned import learned_dir, load_learned

            db = self.config["db"].as_str()
            if not db:
                raise ui.UserError("genrekit: model learned needs `db:` (a genrekit catalogue) in the config")
            load_learned(db).check_usable(self.config["force"].get(bool))
            model = load_model(learned_dir(db) / "model")
        else:
            model = load_model(None if name == "shipped" else name)
        return model, model_id(model.metadata)

    @staticmethod
    def _field(item) -> str:
        """Beets' genre field: ``genres`` (several values) where this beets has it, else ``genre``."""
        return "genres" if "genres" in item._fields else "genre"

    def _has_genre(self, item) -> bool:
        return bool(self._existing(item))

    def _existing(self, item) -> list[str]:
        """Return the genres the item has, as a list."""
        from genrekit.library.taxonomy import split_values

        value = item.get(self._field(item))
        return split_values(value if isinstance(value, list) else [value or ""])

    def _decide(self, item, results: dict, model_id: str, force: bool):
        """Return the :class:`~genrekit.library.tagging.Proposal` of one item."""
        from genrekit.library.tagging import Proposal, decide
        from genrekit.library.tags import tag_namer

        path = os.fsdecode(item.path)
        existing = tuple(self._existing(item))
        result = results.get(path)
        if result is None:
            return Proposal(path, "kept", old={"genre": existing}, model=model_id)
        if isinstance(result, Exception):
            return Proposal(path, "failed", old={"genre": existing}, model=model_id, reason=str(result))
        minimum = self.config["min_confidence"].as_number()
        verdict = "ok" if result.is_confident(minimum) else "uncertain" if result.familiar else "not music"
        action = decide(existing, result.genre, verdict, force)
        name = tag_namer(self.config["tag_names"].as_str())(result.genre)
        return Proposal(
            path,
            action,
            old={"genre": existing},
            genre=(name,),
            klass=result.genre,
            confidence=float(result.confidence),
            model=model_id,
        )

    def _apply(self, item, decision, model_id: str, write: bool) -> bool:
        """Store a decision in the item (and its file when `write`); return whether anything was stored."""
        if decision.action == "failed":
            self._log.warning("genrekit: {0}", decision.reason)
            return False
        if decision.confidence is None:  # kept without a prediction: nothing to store
            return False
        if decision.action == "write":
            field = self._field(item)
            item[field] = list(decision.genre) if field == "genres" else decision.genre[0]
        verdict = decision.action in ("uncertain", "not music")
        item["genrekit_genre"] = decision.action if verdict else decision.genre[0]
        item["genrekit_confidence"] = round(decision.confidence, 4)
        item["genrekit_model"] = model_id
        if write:
            item.try_write()
        item.store()
        return True
