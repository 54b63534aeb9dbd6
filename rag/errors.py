"""One error tree for the library; every message says how to fix the problem."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the library raises on purpose."""


class ConfigError(RagError):
    """A setting has an invalid value."""


class ModelError(RagError):
    """An embedding or generator model cannot be found, provisioned or loaded."""


class LoaderError(RagError):
    """A document cannot be read (unsupported type, unreadable file)."""


class UnsupportedFileType(LoaderError):
    """The file's extension is not one the loaders handle."""


class ParseLimitExceeded(LoaderError):
    """Reading a file passed a limit on its CPU time, memory or duration (rag.ingest.sandbox)."""


class IndexStoreError(RagError):
    """Base for index problems (kept apart from the built-in IndexError)."""


class IndexMissing(IndexStoreError):
    """No index exists at the configured path."""


class IndexCorrupt(IndexStoreError):
    """The index files exist but cannot be read or disagree with each other."""


class IndexMismatch(IndexStoreError):
    """The index was built with another embedding model, dimension or format."""


class StoreUnavailable(IndexStoreError):
    """The configured chunk store (a Milvus server) cannot be reached or refused a request."""


class DocumentNotFound(RagError):
    """No indexed document has this id."""


class DocumentChanged(RagError):
    """A document's file changed (or went) since it was indexed: its pages no longer match."""


class DocumentExists(RagError):
    """An upload would replace a document without asking to."""


class InvalidQuestion(RagError):
    """The question is empty, too long or otherwise unusable."""


class GeneratorError(RagError):
    """A generator failed or is unknown."""


class Interrupted(RagError):
    """An index update was stopped before it was saved (its client went away); nothing changed."""


class Busy(RagError):
    """The server has as much of this work queued as it takes; try again shortly."""

    def __init__(self, message: str, retry_after_s: int = 5) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
