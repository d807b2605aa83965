"""Typed errors of the certificate authority: the class says what went wrong and whose fault it was."""

from __future__ import annotations


class CAError(Exception):
    """Base of every error the CA package raises on purpose."""


# --- certificates -------------------------------------------------------------------------------


class CertificateError(CAError):
    """A certificate was refused; the presenter's fault (or its operator's)."""


class MalformedCertificate(CertificateError):
    """The bytes are not a usable PEM certificate, or lack the fields a swarm node certificate carries."""


class WrongCA(CertificateError):
    """The certificate was not issued by the root CA it was checked against (another swarm, or forged)."""


class CertificateExpired(CertificateError):
    """The certificate's NotAfter is in the past."""


class CertificateNotYetValid(CertificateError):
    """The certificate's NotBefore is in the future (a clock is wrong somewhere)."""


class InvalidCertificateRequest(CAError):
    """A CSR the CA was asked to sign is unreadable, badly signed, or uses a key type the swarm refuses.

    The requester's fault.
    """


# --- join tokens ------------------------------------------------------------------------------


class JoinTokenError(CAError):
    """A join token was refused; the fault of whoever typed or passed it."""


class MalformedJoinToken(JoinTokenError):
    """The token does not have the SWMTKN-1-<digest>-<secret> shape; the message says which part is wrong."""


class JoinTokenForOtherSwarm(JoinTokenError):
    """The token's CA digest is not this swarm's root CA: the token belongs to another swarm."""


class InvalidJoinTokenSecret(JoinTokenError):
    """The token's secret matches neither current token (a typo, or a token rotated since)."""


# --- joining ----------------------------------------------------------------------------------


class RootCAMismatch(CAError):
    """The root CA a manager presented does not match the digest in the join token.

    Either the token is for another swarm or someone between us and the manager is intercepting.
    """


class ManagerUnreachable(CAError):
    """No TLS session could be set up with the manager (network, address, or the manager is down)."""


class JoinRefused(CAError):
    """The manager refused to issue a certificate; the message is the manager's reason."""


# --- key store --------------------------------------------------------------------------------


class KeystoreCorrupt(CAError):
    """Files under the node's data directory are unreadable or do not belong together (local fault)."""
