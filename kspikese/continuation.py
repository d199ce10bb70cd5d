"""Where a continued ANN starts: the ``ann: init:`` of an experiment config.

Stage 1 normally trains a freshly initialised network.  With ``init:`` it starts from trained
weights instead and trains on with the stage's own settings (its loss, learning rate, data):

``init: {profile: P}``
    the ANN of the same table's ``P`` profile (same seed, data and results folder), as that
    profile's run makes it: loaded when done, trained first when not.  The continued stage's
    fingerprint hashes ``P``'s ANN fingerprint, so a change to ``P``'s recipe redoes both.  When
    ``P``'s ANN is not in the results folder but a shipped ANN records exactly that stage
    fingerprint on its card, the shipped weights (stored in float16) are the start.
``init: {model: NAME, digest: D}``
    any model :func:`kspikese.hub.load` resolves with ``ann=True`` (a shipped name, a card, a
    run folder, a ``.keras`` checkpoint), e.g. to train a shipped model on one's own data.
    ``D``, optional, is the 16-hex :func:`kspikese.hybrid.weights_digest` the weights must
    have; the stage's fingerprint hashes the digest of the weights actually found.

The start is copied into the freshly built network tensor by tensor (:func:`transfer`), so it
must be the same architecture (the config's ``model`` and ``model_kwargs``).
"""

INIT_KEYS = ("profile", "model", "digest")


class InitError(ValueError):
    """The ANN named by ``ann: init:`` is missing, different or does not fit the model."""


def check(init, profile, where):
    """``init`` (a config's ``ann: init:``) as a mapping, or ``ValueError`` naming ``where``.

    It must hold exactly one of ``profile`` (another profile's name than ``profile``, the
    config's own) and ``model``; ``digest`` (16 hexadecimal digits) goes with ``model`` only.
    """
    if not isinstance(init, dict):
        raise ValueError(f"{where}: expected a mapping with `profile:` or `model:`, got {init!r}")
    unknown = sorted(set(init) - set(INIT_KEYS))
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; expected some of {list(INIT_KEYS)}")
    if ("profile" in init) == ("model" in init):
        raise ValueError(f"{where}: give exactly one of `profile:` (another profile's ANN) and "
                         f"`model:` (a shipped name or a path), got {sorted(init)}")
    if "profile" in init:
        if "digest" in init:
            raise ValueError(f"{where}: `digest:` goes with `model:`; a profile's ANN is pinned "
                             "by its fingerprint")
        if str(init["profile"]) == str(profile):
            raise ValueError(f"{where}: profile {profile!r} cannot continue its own ANN")
    digest = init.get("digest")
    if digest is not None and (not isinstance(digest, str) or len(digest) != 16
                               or any(c not in "0123456789abcdef" for c in digest)):
        raise ValueError(f"{where}: `digest:` must be 16 lowercase hexadecimal digits "
                         f"(kspikese.hybrid.weights_digest), got {digest!r}")
    return init


def named_model(init, weights_dir=None):
    """``(model, digest)`` of ``init: {model: ...}``; :class:`InitError` if it cannot be loaded
    or its digest is not the one ``init`` asks for."""
    from kspikese import hub
    from kspikese.hybrid import weights_digest

    try:
        model, _ = hub.load(init["model"], ann=True, weights_dir=weights_dir)
    except hub.ModelError as err:
        raise InitError(f"`ann: init: model:` {err}") from None
    digest = weights_digest(model)
    if init.get("digest") not in (None, digest):
        raise InitError(f"`ann: init:` the weights of {init['model']!r} have the digest {digest}, "
                        f"but the recipe starts from {init['digest']}: the model has changed "
                        "since the recipe was written (a shipped model's earlier weights are in "
                        "the repository's history: git log -- kspikese/weights/)")
    return model, digest


def base_profile(cfg, chain=()):
    """The profile whose ANN ``cfg``'s ``init: {profile: P}`` continues (``None`` for no
    ``init:`` or ``init: {model: ...}``), and the chain of profiles with ``cfg``'s added.

    ``chain`` holds the profiles already on the way here; :class:`kspikese.config.ConfigError`
    if ``P`` is one of them or ``cfg``'s own (the profiles continue each other in a loop).
    """
    from kspikese import config as configs

    init = cfg["ann"].get("init")
    if not init or "profile" not in init:
        return None, chain
    chain = (*chain, cfg["profile"])
    if init["profile"] in chain:
        raise configs.ConfigError(f"{cfg['source']}: `ann: init:` profiles continue each other "
                                  f"in a loop: {' -> '.join((*chain, init['profile']))}")
    return init["profile"], chain


def start_fingerprint(table, cfg, seed=0, data="default", _chain=()):
    """What ``cfg``'s ANN starts from, as the fingerprint that stands in for ``init:`` in its
    stage's (``None`` without ``init:``); needs no corpus and makes no folder.

    For ``init: {profile: P}`` it is the ANN fingerprint of ``table``'s profile ``P`` (as the
    file has it, with its own start, recursively, :func:`base_profile`); for ``init: {model:
    ...}`` the digest of the weights (:func:`named_model`).
    """
    from kspikese import config as configs
    from kspikese.runs import table_fingerprints

    init = cfg["ann"].get("init")
    if not init:
        return None
    if "model" in init:
        return named_model(init)[1]
    profile, chain = base_profile(cfg, _chain)
    base = configs.load(table, quick=cfg.get("quick", False), profile=profile)
    start = start_fingerprint(table, base, seed, data, chain)
    return table_fingerprints(base, seed, data, start)["ann"]


def shipped_stage(fingerprint, stage="ann", weights_dir=None):
    """The shipped ANN whose card records ``stage`` with ``fingerprint``, or ``None``."""
    from kspikese import shipped

    for name in shipped.available(weights_dir):
        if name.startswith("snn-"):
            continue
        try:
            card = shipped.read_card(shipped.card_path(name, weights_dir))
            recorded = card["run"]["stages"][stage]["fingerprint"]
        except (shipped.WeightsError, KeyError, TypeError):
            continue
        if recorded == fingerprint:
            return name
    return None


def transfer(source, target, what):
    """Copy ``source``'s weights into ``target`` (same architecture); :class:`InitError` naming
    ``what`` and the first tensor that differs otherwise."""
    src, dst = source.get_weights(), target.get_weights()
    if len(src) != len(dst):
        raise InitError(f"`ann: init:` {what} has {len(src)} weight tensors, the config's model "
                        f"{len(dst)}: not the same architecture (check `model_kwargs:`)")
    for i, (a, b) in enumerate(zip(src, dst)):
        if a.shape != b.shape:
            name = target.weights[i].name
            raise InitError(f"`ann: init:` {what}'s weight {i} has shape {a.shape}, the config's "
                            f"model's ({name}) {b.shape}: not the same architecture")
    target.set_weights([a.astype(b.dtype) for a, b in zip(src, dst)])
    return target
