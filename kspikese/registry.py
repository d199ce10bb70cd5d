"""A table of entries keyed by class and looked up along an object's MRO.

keras-spiking's ``ModelEnergy.register_layer`` pattern: ``@REG.register(Conv1D)`` on a small
function stores it for ``Conv1D``; ``REG.lookup(layer)`` returns the entry of the first class of
``type(layer).__mro__`` that has one, so a subclass without an entry of its own inherits its
parent's.  The neuron rules, the scaling rules and the energy statistics are such tables.
"""


class ClassRegistry(dict):
    """``{class: entry}`` with a registering decorator and an MRO lookup."""

    def register(self, *classes, entry=None):
        """Decorator storing the decorated function (or ``entry(function)`` when ``entry`` is
        given) for each of ``classes``; the function is returned unchanged."""
        def store(fn):
            for cls in classes:
                self[cls] = fn if entry is None else entry(fn)
            return fn

        return store

    def lookup(self, obj, default=None):
        """The entry of the nearest class of ``type(obj).__mro__`` that has one, else ``default``."""
        for cls in type(obj).__mro__:
            if cls in self:
                return self[cls]
        return default
