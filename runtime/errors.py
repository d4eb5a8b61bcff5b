"""The exceptions the runtime raises, and the one signal it uses to stop a step.

::

    Error                   base of everything the runtime raises; never raised itself
    ├── ConfigError         bad settings, CLI input or component files: exit code 2 at start-up
    │   └── ComponentError  component.json or a step module is broken (names file and JSON path)
    ├── StepError           raised on purpose by step code; becomes one `error` event
    │   ├── InvalidInput    the message or the step's configuration is not usable
    │   └── AuthError       the API rejected the credential (see runtime.auth.errors)
    └── TransportError      the broker connection or a publish failed; never reaches steps

    StepCancelled (BaseException)  raised inside a step that ran past its time limit, so that
                                   a broad ``except Exception`` in step code cannot swallow it
"""

from __future__ import annotations


class Error(Exception):
    """Base of every exception the runtime raises."""


class ConfigError(Error):
    """Settings, command-line input or component files are wrong; the process cannot start."""


class ComponentError(ConfigError):
    """component.json, a metadata file or a step module is broken.

    The message names the file, the JSON path and what is wrong, one problem per line.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class StepError(Error):
    """Raised by step code on purpose; the runtime turns it into one `error` event."""


class InvalidInput(StepError):
    """The incoming message or the step's configuration cannot be used."""


class AuthError(StepError):
    """The API rejected the credential, even after one refresh."""


class TransportError(Error):
    """The broker connection was lost or a publish was not confirmed."""


class StepCancelled(BaseException):
    """Stops a step that ran past its time limit; step code should let it propagate."""
