"""The seed's lab as a model, and the shorthands the netpol unit tests share (imported by name)."""

from pytest_k8ssec.netpol.expected import expected_table
from pytest_k8ssec.netpol.model import Model, Namespace, Pod, Port, Service
from pytest_k8ssec.netpol.truthtable import Outcome

A, X, E = Outcome.ALLOWED, Outcome.BLOCKED, Outcome.ERROR
RUN = {"k8ssec.io/run": "r1"}
HTTP = Port(80, "http")
REAL = {"tenant": "k8ssec-r1-tenant", "other": "k8ssec-r1-other"}
T, O = REAL["tenant"], REAL["other"]

SEED = Model(
    namespaces=(Namespace("tenant"), Namespace("other")),
    pods=(Pod("tenant", "nginx", {"run": "nginx"}, ports=(HTTP,)),
          Pod("tenant", "access", {"run": "access"}),
          Pod("other", "access", {"run": "access"})),
    services=(Service("tenant", "nginx", {"run": "nginx"}),),
).bind(REAL)


def outcome(model, policies, source, destination, port=HTTP):
    return expected_table(model, policies).get(source, destination, port)
