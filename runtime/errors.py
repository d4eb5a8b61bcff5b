"""The exceptions the runtime raises, and the one signal it uses to stop a step.

Every class the runtime or the connector raises is drawn here, where it sits and why.
What step code may meet (and catch) stands under ``Error``; a few stand elsewhere on
purpose, each for the reason given. ``tests/unit/test_errors.py`` fails when a class is
added without a place here or without a docstring::

    Error                          base of everything the runtime raises; never raised itself
    ├── ConfigError                bad settings, CLI input or component files: exit code 2
    │   └── ComponentError         component.json or a step module is broken (file, JSON path)
    ├── StepError                  raised on purpose by step code; becomes one `error` event
    │   ├── InvalidInput           the message or the step's configuration is not usable
    │   │   ├── CredentialError    the credential is malformed, or a relative URL has no base
    │   │   ├── ExpressionError    a JSONata expression does not compile or fails
    │   │   ├── MomentError        $moment() given what moment.js would refuse
    │   │   └── ServiceEventError  a service call emitted an event other than updateKeys
    │   ├── AuthError              the API or the provider rejected the credential
    │   │   ├── ReauthRequired     refused even after a refresh, or invalid_grant: reconnect
    │   │   ├── ClientMisconfigured  invalid_client, bad scopes: fix the app's settings
    │   │   │   └── LoginFailed    `auth login` could not finish (devtools)
    │   │   ├── InsufficientScope  403 on a check: the credential lacks a permission
    │   │   ├── TokenEndpointUnavailable  5xx, 429 or no answer after retries (retryable)
    │   │   ├── CredentialLockUnavailable  the replicas' lock could not be had (retryable)
    │   │   └── KeysConflict       the store holds keys another process saved meanwhile
    │   ├── BodyNotReplayable      a refresh needs the request again, its body was a stream
    │   ├── DeliveryFailed         an event could not be delivered (already reported)
    │   ├── StepTimedOut           the step ran past its time limit
    │   ├── ObjectStorageError     a body kept in object storage could not be fetched or put
    │   ├── KeysNotSaved           refreshed keys the platform would not take
    │   ├── OutgoingTooLarge       an emitted message is larger than the platform takes
    │   └── NoReplyTo              httpReply for a message with nowhere to reply to
    ├── TransportError             the broker connection or a publish failed; never reaches steps
    │   └── UnroutableError        the broker returned a publish (no queue bound to its key)
    └── PlatformApiError           the platform's REST API refused or did not answer

    StepCancelled (BaseException)  raised inside a step that ran past its time limit, so
                                   that a broad ``except Exception`` cannot swallow it
    Stopped (BaseException)        SIGTERM in a devtools command: unwinds to its exit code

Outside ``Error``, on purpose:

    ValueError
    ├── OutOfBounds                a value from outside broke a bound (runtime.bounded): a
    │   │                          ValueError, as json.loads' own errors are, so parsing
    │   │                          code that catches ValueError keeps working
    │   ├── TooLarge, TooDeep, NotJson
    │   └── TooSlow                a body did not arrive whole in time
    ├── BadMessage                 an incoming message cannot be read: rejected, never a step's
    └── CipherError                a message did not decrypt (inside BadMessage's path)
    requests.ReadTimeout
    └── AnswerTooSlow              a server trickled its answer past the whole deadline: a
                                   requests timeout, so one ``except requests.Timeout``
                                   serves sync and async steps alike

    Exception (process-internal, never seen by steps): ServiceInputError (the service
    command's variables), StoreUnavailable (the replicas' store did not answer: the worker
    decides alone), ClusterError (the test cluster), GrantRefused and SecretRefused (the
    demo provider and the local secrets API answering an HTTP error).
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
