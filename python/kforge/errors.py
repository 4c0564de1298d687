"""errors.py -- the exceptions kforge raises for the library's status codes.

The message is the library's own (kf_errmsg). A formula or alias error also
carries the string and the byte offset of the offending token, and prints the
string with a caret under it, as the kforge command does.
"""


class KforgeError(RuntimeError):
    """A kforge call failed. Attributes: status (the kf_status code), status_name
    ("KF_ERR_TYPE"), message (the library's text), text (the formula, formula2 or
    alias the message is about, or None), offset (the byte offset of the offending
    token in text, or -1), column (offset + 1, or None), source (-1 none, 0 the
    formula, 1 formula2, 2 + k the k-th alias)."""

    def __init__(self, status, status_name, message, text=None, offset=-1, source=-1):
        self.status = status
        self.status_name = status_name
        self.message = message
        self.text = text
        self.offset = offset
        self.source = source
        self.column = offset + 1 if text is not None and offset >= 0 else None
        super().__init__(self._render())

    def _render(self):
        s = self.message
        if self.column is not None:
            line = self.text.replace("\n", " ")
            s += "\n    %s\n    %s^" % (line, " " * len(line.encode()[:self.offset].decode(errors="replace")))
        return s


class FormulaError(KforgeError, ValueError):
    """A formula or alias does not parse (KF_ERR_SYNTAX), or its dims, categories or
    arity disagree (KF_ERR_TYPE); column says where."""


class ArgumentError(KforgeError, ValueError):
    """Bad arguments (KF_ERR_ARG) or values past a limit (KF_ERR_LIMIT)."""


class UnsupportedError(KforgeError, NotImplementedError):
    """A KeOps operation, reduction or engine kforge does not provide here (KF_ERR_UNSUPPORTED)."""


class NoConvergence(KforgeError):
    """An iterative solver stopped at its iteration cap (KF_ERR_NOCONV). values (and
    vectors, where asked) hold the pairs that converged; report says how far it got."""

    values = None
    vectors = None
    report = None


_BY_STATUS = {2: ArgumentError, 3: FormulaError, 4: FormulaError, 5: UnsupportedError,
              6: ArgumentError, 11: NoConvergence}


def error_for(status, status_name, message, text=None, offset=-1, source=-1):
    if status == 1:
        return MemoryError("kforge: " + message)
    cls = _BY_STATUS.get(status, KforgeError)
    return cls(status, status_name, message, text, offset, source)
