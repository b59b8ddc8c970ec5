"""Every RPC passes here first: deny unless the method is explicitly allowed for the caller.

The interceptor identifies the activity by its client certificate (mutual TLS already proved the
certificate chains to our CA), checks the operator's session token where the method needs one, checks
the role the method needs, then hands the servicer a context that carries the `Caller`. It is also the
one place where exceptions become statuses (search_service.errors), so no handler leaks a traceback.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc

from dcii.v1 import admin_pb2, batch_pb2, ingest_pb2, peer_pb2, privacy_pb2, search_pb2
from indexer.exc import DciiError, PermissionDenied, ResourceExhausted, Unauthenticated
from search_service.accreditation import Activity, Caller, Role, Status
from search_service.errors import abort, serving
from search_service.first_message import first_message
from search_service.limits import UNCAPPED, CallLimiter, CallSlot, RateLimit, RateLimiter
from search_service.peer_certificate import peer_fingerprint
from search_service.refusal_audit import RefusedCall, TracingRefused
from search_service.registry import Registry
from search_service.request_parsing import UNARY_REQUEST_BYTES, parsed, parsed_each, tolerant

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rule:
    """What a method needs: a role (None: any accredited activity), and whether an operator session."""

    role: Role | None
    session: bool = True
    # Infrastructure (the health check): any peer whose certificate chains to our CA.
    infrastructure: bool = False
    # The largest unary request read (once the call is authorized), in bytes.
    request_bytes: int = UNARY_REQUEST_BYTES


LOGIN = "/dcii.v1.SessionService/Login"


def _service_rules(descriptor: Any, role: Role) -> dict[str, Rule]:
    return {f"/{descriptor.full_name}/{method.name}": Rule(role) for method in descriptor.methods}


def _policy() -> dict[str, Rule]:
    files = {
        ingest_pb2: ("IngestService", Role.SUBMITTER),
        search_pb2: ("SearchService", Role.QUERIER),
        batch_pb2: ("BatchService", Role.BATCH),
        privacy_pb2: ("PrivacyService", Role.PRIVACY_OFFICER),
        admin_pb2: ("AdminService", Role.ADMINISTRATOR),
    }
    policy: dict[str, Rule] = {}
    for module, (service, role) in files.items():
        policy |= _service_rules(module.DESCRIPTOR.services_by_name[service], role)
    policy[LOGIN] = Rule(None, session=False)
    # Another instance of the deployment (search_service.peers): its certificate's activity, no operator.
    peer = peer_pb2.DESCRIPTOR.services_by_name["PeerService"]
    # A person's accounting names each of their records (search_service.peer_wire bounds them).
    peer_rule = Rule(Role.PEER, session=False, request_bytes=4 * 1024 * 1024)
    policy |= {f"/{peer.full_name}/{m.name}": peer_rule for m in peer.methods}
    policy["/dcii.v1.SessionService/Logout"] = Rule(None)
    # A load balancer's probe: any peer of our CA, one quick unary call.
    policy["/grpc.health.v1.Health/Check"] = Rule(None, session=False, infrastructure=True)
    # Streams a client holds open as long as it likes: open to any certificate of the CA, 32 Watch streams
    # held every worker thread and no accredited terminal was answered. An accredited activity only, under
    # its rate and its cap on calls in progress (reflection also lists every service).
    for method in (
        "/grpc.health.v1.Health/Watch",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    ):
        policy[method] = Rule(None, session=False)
    return policy


POLICY: dict[str, Rule] = _policy()

# Health and reflection run as this pseudo-activity: it holds no role, so it can reach nothing else.
_INFRASTRUCTURE = Activity("infrastructure", "", frozenset(), frozenset(), Status.ACTIVE)


class CallerContext:
    """The servicer's context: the real one, plus who is calling, and a way to ask again."""

    def __init__(self, inner: grpc.ServicerContext, caller: Caller, recheck: Callable[[], Caller]) -> None:
        self._inner = inner
        self.caller = caller
        self._recheck = recheck

    def checked_again(self) -> Caller:
        self.caller = self._recheck()
        return self.caller

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def caller_of(context: grpc.ServicerContext) -> Caller:
    if not isinstance(context, CallerContext):
        raise PermissionDenied("no caller")  # only reachable if a servicer is served without the interceptor
    return context.caller


def caller_again(context: grpc.ServicerContext) -> Caller:
    """The caller checked again now, as a new call would be (certificate, activity, session, role; not the
    rate): a stream lives as long as its client likes, and the message or page it is about to take or send
    after its activity was suspended or revoked, its operator suspended, its session ended or expired, or its
    certificate expired is refused (PermissionDenied / Unauthenticated, audited as any refusal). Cheap: the
    registry answers from its cache until its file changes."""
    if not isinstance(context, CallerContext):
        raise PermissionDenied("no caller")
    return context.checked_again()


def _is_abort(error: Exception) -> bool:
    # grpc's context.abort() raises a bare Exception() after setting the status; let it through.
    return type(error) is Exception and not error.args


Authorize = Callable[[grpc.ServicerContext], Caller]
# A call's caller, authorized at its start, and the check to run again during it (caller_again).
Authorized = tuple[Caller, Callable[[], Caller]]
Admit = Callable[[Caller], CallSlot]
Refused = Callable[[grpc.ServicerContext, DciiError], None]


def _fail(context: grpc.ServicerContext, error: Exception, refused: Refused) -> None:
    """Turn an exception into the call's status; refusals are recorded first (the audit may fail closed)."""
    if _is_abort(error) or isinstance(error, grpc.RpcError):
        # An RpcError here is gRPC's own word that the call ended (the client cancelled it, its deadline
        # passed) while the handler read its request stream: handed back as it is, gRPC ends the call
        # quietly; turned into a status, it would be an INTERNAL error logged for a client's normal act.
        raise error
    if isinstance(error, PermissionDenied | Unauthenticated):
        try:
            refused(context, error)
        except DciiError as unrecorded:
            abort(context, unrecorded)
    abort(context, error)


# What a handler is given of its request: the message, refused if it did not parse (`parsed`), or a stream
# of them, refused at the first that did not (`parsed_each`). Applied once the caller is authorized.
Checked = Callable[[Any], Any]


def _guard_unary(
    run: Callable[..., Any],
    authorize: Authorize,
    recheck: Authorize,
    admit: Admit,
    refused: Refused,
    checked: Checked,
    *,
    one_message: bool = False,
) -> Callable[..., Any]:
    """`one_message`: a unary-request method served as request-streaming, its message read once the call
    is authorized and admitted (search_service.first_message)."""

    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        try:
            caller = authorize(context)
            with admit(caller):  # the slot is held while the handler runs, whichever way it ends
                if one_message:
                    request = first_message(request, context)
                return run(checked(request), CallerContext(context, caller, lambda: recheck(context)))
        except Exception as error:
            _fail(context, error, refused)

    return handler


def _guard_stream(
    run: Callable[..., Iterator[Any]],
    authorize: Authorize,
    recheck: Authorize,
    admit: Admit,
    refused: Refused,
    checked: Checked,
    *,
    one_message: bool = False,
) -> Callable[..., Any]:
    def handler(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        try:
            caller = authorize(context)
            # Released when the response iterator finishes, raises or is closed (gRPC drops it when the
            # client cancels or the deadline passes: GeneratorExit runs the `with`'s exit). The end-of-call
            # callback is the backstop, should the iterator outlive the call: release is idempotent.
            with admit(caller) as slot:
                context.add_callback(slot.release)
                if one_message:
                    request = first_message(request, context)
                yield from run(checked(request), CallerContext(context, caller, lambda: recheck(context)))
        except Exception as error:
            _fail(context, error, refused)

    return handler


def _bearer(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value.removeprefix("Bearer ").strip()
    return None


REFUSALS_PER_SECOND, REFUSAL_BURST = 2.0, 20.0
HEALTH_CALLS_PER_CERTIFICATE = 4


class _RefusedTooOften(ResourceExhausted):
    """A certificate past its budget of refusals: refused before the registry is asked, and not audited."""


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(
        self,
        registry: Registry,
        on_refusal: Callable[[RefusedCall], None] | None = None,
        limiter: RateLimit | None = None,
        calls: CallLimiter | None = None,
    ) -> None:
        self._registry = registry
        # Per-activity rate limit, checked once the activity is known (health checks are not limited).
        self._limiter = limiter
        # Per-activity cap on calls in progress, taken once the call is authorized and within its rate.
        self._calls = calls
        # Called with every refusal (search_service.refusal_audit); the audit trail hooks here.
        self._on_refusal = on_refusal
        # Refusals per certificate, before the registry is asked: a terminal refused over and over (no
        # session, a wrong role, revoked) once got ~950 refusals a second through a rate of 2, each an audit
        # entry (~40 GB of trail a day) and a registry lookup that slowed everyone else's searches.
        self._refusals = RateLimiter(REFUSALS_PER_SECOND, REFUSAL_BURST)
        self._probes = CallLimiter(HEALTH_CALLS_PER_CERTIFICATE)

    def _identify(
        self, method: str, rule: Rule | None, token: str | None, context: grpc.ServicerContext, *, budget: bool
    ) -> Caller:
        """The caller, if its certificate, activity and session (where the method needs one) may call now;
        `budget`: a certificate past its refusals is refused. Its role is `_check_role`'s: a caller refused
        for its role is known, and its refusal is recorded under its activity and operator."""
        fingerprint = peer_fingerprint(context)
        if budget and (self._refusals.spent(fingerprint) or (method == LOGIN and not self._reserved(fingerprint))):
            raise _RefusedTooOften("too many refused calls from this certificate: retry after a short backoff")
        if rule is None:
            raise PermissionDenied(f"{method} is not an allowed method")
        if rule.infrastructure:
            return Caller(activity=_INFRASTRUCTURE, fingerprint=fingerprint)
        if rule.session and token is None:
            self._registry.activity_for_certificate(fingerprint)  # the edge first: unknown terminals hear so
            raise Unauthenticated("log in first: send 'authorization: Bearer <session token>'")
        return self._registry.caller(fingerprint, token if rule.session else None)

    def _check_role(self, method: str, rule: Rule | None, caller: Caller) -> None:
        if rule is not None and rule.role is not None and rule.role not in caller.activity.roles:
            raise PermissionDenied(f"{method} needs the {rule.role.value} role")

    def _take_rate(self, caller: Caller) -> None:
        if self._limiter is not None and caller.activity is not _INFRASTRUCTURE:
            self._limiter.take(caller.activity.activity_id)

    def _admit(self, caller: Caller) -> CallSlot:
        """A slot under the caller's cap (ResourceExhausted when full); health checks under their
        certificate's (a probe needs one or two at a time; forty waiting held every worker)."""
        if self._calls is None:
            return UNCAPPED
        if caller.activity is _INFRASTRUCTURE:
            return self._probes.acquire(f"certificate {caller.fingerprint[:16]}")
        return self._calls.acquire(caller.activity.activity_id)

    def _reserved(self, fingerprint: str) -> bool:
        """A login's refusal token, taken as it starts (given back when it succeeds): taken only once refused,
        after the failed login's scrypt, every login in flight passed the check at each refill, and sixteen
        threads of failed logins got 17.6 a second through a budget of 2 (a misbehaving-terminal review)."""
        try:
            self._refusals.take(fingerprint)
        except ResourceExhausted:
            return False
        return True

    def _refused(
        self,
        method: str,
        context: grpc.ServicerContext,
        refusal: DciiError,
        caller: Caller | None,
        account: str | None,
    ) -> None:
        """Every refusal is logged (no PII: the reason names methods, roles, activities) and audited, but
        those of a certificate over its budget of refusals: answered at once, counted, not recorded. `caller`:
        who was calling, if known by then; `account`: the account code a login named, once its message was read."""
        if isinstance(refusal, _RefusedTooOften):
            log.debug("refused without asking", extra={"method": method, "code": refusal.code})
            return
        log.warning("refused", extra={"method": method, "code": refusal.code})
        try:
            fingerprint = peer_fingerprint(context)
        except DciiError:
            fingerprint = ""
        if method != LOGIN:  # a login's was taken as it started
            with contextlib.suppress(ResourceExhausted):
                self._refusals.take(fingerprint)
        if self._on_refusal is not None:
            targets = (refusal.target,) if isinstance(refusal, TracingRefused) else ()
            exists = account is None or bool(self._registry.list_operators(account))
            refused = RefusedCall(method, fingerprint, refusal.message, caller, account, targets, account_exists=exists)
            self._on_refusal(refused)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        rule = POLICY.get(method)
        token = _bearer(handler_call_details.invocation_metadata)

        # This call's (intercept_service runs once a call): whether it was refused, which keeps the token of
        # the certificate's refusal budget that a login reserved (`_reserved`); who is calling, once known;
        # and the account code a login names, once its message is read. The last two are for its refusal's
        # audit: an operator refused a method is named, not only its certificate, and a refused login names
        # the account it tried (a guessing attack is read from the trail).
        was_refused = False
        known: Caller | None = None
        account: str | None = None

        def authorize(context: grpc.ServicerContext) -> Caller:
            nonlocal known
            serving(method)  # for an unexpected error's log line (search_service.errors)
            caller = known = self._identify(method, rule, token, context, budget=True)
            self._check_role(method, rule, caller)
            self._take_rate(caller)
            if method == LOGIN:

                def settle() -> None:
                    if not was_refused:
                        self._refusals.give_back(caller.fingerprint)

                context.add_callback(settle)
            return caller

        def recheck(context: grpc.ServicerContext) -> Caller:
            caller = self._identify(method, rule, token, context, budget=False)
            self._check_role(method, rule, caller)
            return caller

        def refused(context: grpc.ServicerContext, refusal: DciiError) -> None:
            nonlocal was_refused
            was_refused = True
            self._refused(method, context, refusal, known, account)

        def login_parsed(request: Any) -> Any:
            nonlocal account
            message = parsed(request)
            account = message.account_code  # never the password: that stays in the message
            return message

        codec = {
            "request_deserializer": tolerant(handler.request_deserializer),
            "response_serializer": handler.response_serializer,
        }
        limit = rule.request_bytes if rule is not None else UNARY_REQUEST_BYTES
        one = {**codec, "request_deserializer": tolerant(handler.request_deserializer, limit)}
        # A unary request is read only once the call is authorized and admitted (search_service.first_message):
        # served as request-streaming, the same on the wire.
        if handler.unary_unary is not None:
            checked = login_parsed if method == LOGIN else parsed
            guarded = _guard_unary(
                handler.unary_unary, authorize, recheck, self._admit, refused, checked, one_message=True
            )
            return grpc.stream_unary_rpc_method_handler(guarded, **one)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(
                _guard_unary(handler.stream_unary, authorize, recheck, self._admit, refused, parsed_each), **codec
            )
        if handler.unary_stream is not None:
            guarded = _guard_stream(
                handler.unary_stream, authorize, recheck, self._admit, refused, parsed, one_message=True
            )
            return grpc.stream_stream_rpc_method_handler(guarded, **one)
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(
            _guard_stream(handler.stream_stream, authorize, recheck, self._admit, refused, parsed_each), **codec
        )
