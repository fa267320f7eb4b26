"""Where the ids are: requestParameters / responseElements models per EC2 call.

CloudTrail logs EC2 parameters in three shapes, all accepted here:
- flat values: {"routeTableId": "rtb-1", "vpcPeeringConnectionId": "pcx-1"}
- classic list wrappers: {"ipPermissions": {"items": [...]}}, and {} for an empty list
- the newer XML-derived form: {"DeleteFlowLogsRequest": {"FlowLogId": {"content": "fl-1",
  "tag": 1}}} (PascalCase keys, {"content", "tag"} for a value, {"item": ...} for a list)
The models are the table of "event name -> where the ids are": each id field is annotated
with the kind of resource it names (`Touches`), and `touched()` follows the annotations.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from enum import Enum
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

# -- shape helpers --------------------------------------------------------------------


def _unwrap(value: Any) -> Any:
    """Peel one encoding layer: {"items": x} / {"item": x} -> x, {"content": v} -> v."""
    if isinstance(value, dict):
        for key in ("items", "item", "content"):
            if key in value:
                return value[key]
    return value


def _as_list(value: Any) -> list[Any]:
    """A CloudTrail list in any of its shapes -> a Python list ({} and "" are empty lists)."""
    value = _unwrap(value)
    if value is None or value == "" or value == {}:
        return []
    return value if isinstance(value, list) else [value]


def _id_list(value: Any) -> tuple[str, ...]:
    """Ids as a tuple, whatever the shape: "x", ["x"], {"items": [...]}, {"content": "x"},
    [{"content": "x", "tag": 1}], {"items": [{"resourceId": "x"}]}."""
    ids: list[str] = []
    for item in _as_list(value):
        item = _unwrap(item)
        if isinstance(item, dict) and len(item) == 1:  # {"resourceId": "vpc-1"}
            item = next(iter(item.values()))
        if isinstance(item, dict | list):
            ids.extend(_id_list(item))
        elif item not in (None, ""):
            ids.append(str(item))
    return tuple(ids)


def _as_text(value: Any) -> Any:
    return value if value is None else str(value)


def _as_utc(moment: datetime) -> datetime:
    # CloudTrail times are UTC; some exporters drop the zone ("2021-01-24 04:55:45.000").
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _lower_first(key: str) -> str:
    return key[:1].lower() + key[1:]


def _camel_keys(value: Any) -> Any:
    """XML-derived CloudTrail parameters use PascalCase keys; the classic form camelCase."""
    if isinstance(value, dict):
        return {_lower_first(k): _camel_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel_keys(v) for v in value]
    return value


class Touches(Enum):
    """The kind of resource an id field names."""

    VPC = "vpc"
    PEERING = "peering"
    ROUTE_TABLE = "route_table"
    SUBNET = "subnet"
    SECURITY_GROUP = "security_group"
    NETWORK_ACL = "network_acl"
    FLOW_LOG = "flow_log"
    ASSOCIATION = "association"
    REGION = "region"
    ACCOUNT = "account"
    RESOURCE = "resource"  # any of the above, told apart by the id's prefix (flow logs)


_PREFIXES = {"vpc-": Touches.VPC, "subnet-": Touches.SUBNET}

T = TypeVar("T")
Ids = Annotated[tuple[str, ...], BeforeValidator(_id_list)]
Items = Annotated[tuple[T, ...], BeforeValidator(_as_list)]
Text = Annotated[str | None, BeforeValidator(_unwrap)]
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]

VpcIds = Annotated[Ids, Touches.VPC]
PeeringIds = Annotated[Ids, Touches.PEERING]
RouteTableIds = Annotated[Ids, Touches.ROUTE_TABLE]
SubnetIds = Annotated[Ids, Touches.SUBNET]
SecurityGroupIds = Annotated[Ids, Touches.SECURITY_GROUP]
NetworkAclIds = Annotated[Ids, Touches.NETWORK_ACL]
FlowLogIds = Annotated[Ids, Touches.FLOW_LOG]
AssociationIds = Annotated[Ids, Touches.ASSOCIATION]
Regions = Annotated[Ids, Touches.REGION]
AccountIds = Annotated[Ids, Touches.ACCOUNT]
ResourceIds = Annotated[Ids, Touches.RESOURCE]


class Params(BaseModel):
    """Part of requestParameters / responseElements: camelCase keys, unknown keys kept."""

    # defer_build: built on first validation, so a cold start builds only what it parses.
    model_config = ConfigDict(
        frozen=True,
        extra="allow",
        alias_generator=to_camel,
        populate_by_name=True,
        defer_build=True,
    )


class Request(Params):
    @model_validator(mode="before")
    @classmethod
    def _xml_form(cls, data: Any) -> Any:
        # {"DeleteFlowLogsRequest": {"FlowLogId": {...}}} -> {"flowLogId": {...}}
        if isinstance(data, dict) and len(data) == 1:
            ((key, inner),) = data.items()
            if key.endswith("Request") and isinstance(inner, dict):
                return _camel_keys(inner)
        return data


class Response(Params):
    @model_validator(mode="before")
    @classmethod
    def _xml_form(cls, data: Any) -> Any:
        # {"DeleteFlowLogsResponse": {"requestId": ..., "xmlns": ...}} -> its content
        if isinstance(data, dict) and len(data) == 1:
            ((key, inner),) = data.items()
            if key.endswith("Response") and isinstance(inner, dict):
                return _camel_keys(inner)
        return data


# -- what each call carries -------------------------------------------------------------


class PeeringRef(Request):
    vpc_peering_connection_id: PeeringIds = ()


class VpcInfo(Params):
    vpc_id: VpcIds = ()
    owner_id: AccountIds = ()
    region: Regions = ()
    cidr_block: str | None = None
    cidr_block_set: Items[dict[str, Any]] = ()


class PeeringStatus(Params):
    code: str | None = None
    message: str | None = None


class PeeringConnectionInfo(Params):
    vpc_peering_connection_id: PeeringIds = ()
    requester_vpc_info: VpcInfo | None = None
    accepter_vpc_info: VpcInfo | None = None
    status: PeeringStatus | None = None


class CreateVpcPeeringConnectionRequest(Request):
    vpc_id: VpcIds = ()
    peer_vpc_id: VpcIds = ()
    peer_owner_id: AccountIds = ()
    peer_region: Regions = ()


class PeeringConnectionResponse(Response):
    vpc_peering_connection: PeeringConnectionInfo | None = None


class ModifyPeeringOptionsRequest(PeeringRef):
    requester_peering_connection_options: dict[str, Any] | None = None
    accepter_peering_connection_options: dict[str, Any] | None = None


class RouteRequest(Request):
    route_table_id: RouteTableIds = ()
    vpc_peering_connection_id: PeeringIds = ()
    destination_cidr_block: str | None = None
    destination_ipv6_cidr_block: str | None = None
    destination_prefix_list_id: str | None = None
    gateway_id: str | None = None


class RouteInfo(Params):
    vpc_peering_connection_id: PeeringIds = ()
    destination_cidr_block: str | None = None


class RouteTableInfo(Params):
    route_table_id: RouteTableIds = ()
    vpc_id: VpcIds = ()
    route_set: Items[RouteInfo] = ()


class VpcRef(Request):
    vpc_id: VpcIds = ()


class RouteTableRef(Request):
    route_table_id: RouteTableIds = ()


class CreateRouteTableResponse(Response):
    route_table: RouteTableInfo | None = None


class AssociateRouteTableRequest(Request):
    route_table_id: RouteTableIds = ()
    subnet_id: SubnetIds = ()
    gateway_id: str | None = None


class AssociationRef(Request):
    association_id: AssociationIds = ()


class NewAssociationResponse(Response):
    association_id: AssociationIds = ()
    new_association_id: AssociationIds = ()


class ReplaceRouteTableAssociationRequest(AssociationRef):
    route_table_id: RouteTableIds = ()


class AssociateVpcCidrBlockRequest(Request):
    vpc_id: VpcIds = ()
    cidr_block: str | None = None
    amazon_provided_ipv6_cidr_block: bool | None = None
    ipv6_cidr_block: str | None = None


class CidrBlockAssociation(Params):
    association_id: AssociationIds = ()
    cidr_block: str | None = None
    ipv6_cidr_block: str | None = None


class VpcCidrBlockResponse(Response):
    vpc_id: VpcIds = ()
    cidr_block_association: CidrBlockAssociation | None = None
    ipv6_cidr_block_association: CidrBlockAssociation | None = None


class IpPermission(Params):
    ip_protocol: str | None = None
    from_port: int | None = None
    to_port: int | None = None
    ip_ranges: Items[dict[str, Any]] = ()
    ipv6_ranges: Items[dict[str, Any]] = ()
    groups: Items[dict[str, Any]] = ()  # referenced groups: read, not changed
    prefix_list_ids: Items[dict[str, Any]] = ()

    @property
    def cidrs(self) -> tuple[str, ...]:
        return tuple(r["cidrIp"] for r in self.ip_ranges if "cidrIp" in r) + tuple(
            r["cidrIpv6"] for r in self.ipv6_ranges if "cidrIpv6" in r
        )


class SecurityGroupIngressRequest(Request):
    group_id: SecurityGroupIds = ()
    group_name: str | None = None
    ip_permissions: Items[IpPermission] = ()
    # The older flat form: one rule spelled out at the top level.
    ip_protocol: str | None = None
    from_port: int | None = None
    to_port: int | None = None
    cidr_ip: str | None = None


class SecurityGroupRule(Params):
    group_id: SecurityGroupIds = ()
    security_group_rule_id: str | None = None


class SecurityGroupRulesResponse(Response):
    security_group_rule_set: Items[SecurityGroupRule] = ()


class SecurityGroupRuleUpdate(Params):
    security_group_rule_id: Text = None
    security_group_rule: dict[str, Any] | None = None


class ModifySecurityGroupRulesRequest(Request):
    group_id: SecurityGroupIds = ()
    security_group_rule: Items[SecurityGroupRuleUpdate] = ()


class PortRange(Params):
    from_: int | None = Field(None, alias="from")
    to: int | None = None


class NetworkAclEntryRequest(Request):
    network_acl_id: NetworkAclIds = ()
    rule_number: int | None = None
    egress: bool | None = None
    rule_action: str | None = None
    acl_protocol: Annotated[str | None, BeforeValidator(_as_text)] = None  # "6" or -1
    cidr_block: str | None = None
    ipv6_cidr_block: str | None = None
    port_range: PortRange | None = None


class ReplaceNetworkAclAssociationRequest(AssociationRef):
    network_acl_id: NetworkAclIds = ()


class CreateFlowLogsRequest(Request):
    resource_id: ResourceIds = ()  # XML-derived form: ResourceId {content, tag}
    resource_id_set: ResourceIds = ()  # classic form
    resource_ids: ResourceIds = ()
    resource_type: str | None = None
    traffic_type: str | None = None


class CreateFlowLogsResponse(Response):
    flow_log_id_set: FlowLogIds = ()


class DeleteFlowLogsRequest(Request):
    flow_log_id: FlowLogIds = ()  # XML-derived {content, tag} or the legacy list
    flow_log_id_set: FlowLogIds = ()


# Event name -> (requestParameters model, responseElements model).
SHAPES: dict[str, tuple[type[Request], type[Response]]] = {
    "CreateVpcPeeringConnection": (CreateVpcPeeringConnectionRequest, PeeringConnectionResponse),
    "AcceptVpcPeeringConnection": (PeeringRef, PeeringConnectionResponse),
    "RejectVpcPeeringConnection": (PeeringRef, Response),
    "DeleteVpcPeeringConnection": (PeeringRef, Response),
    "ModifyVpcPeeringConnectionOptions": (ModifyPeeringOptionsRequest, Response),
    "CreateRoute": (RouteRequest, Response),
    "ReplaceRoute": (RouteRequest, Response),
    "DeleteRoute": (RouteRequest, Response),
    "CreateRouteTable": (VpcRef, CreateRouteTableResponse),
    "DeleteRouteTable": (RouteTableRef, Response),
    "AssociateRouteTable": (AssociateRouteTableRequest, NewAssociationResponse),
    "DisassociateRouteTable": (AssociationRef, Response),
    "ReplaceRouteTableAssociation": (ReplaceRouteTableAssociationRequest, NewAssociationResponse),
    "AssociateVpcCidrBlock": (AssociateVpcCidrBlockRequest, VpcCidrBlockResponse),
    "DisassociateVpcCidrBlock": (AssociationRef, VpcCidrBlockResponse),
    "AuthorizeSecurityGroupIngress": (SecurityGroupIngressRequest, SecurityGroupRulesResponse),
    "RevokeSecurityGroupIngress": (SecurityGroupIngressRequest, SecurityGroupRulesResponse),
    "ModifySecurityGroupRules": (ModifySecurityGroupRulesRequest, Response),
    "CreateNetworkAclEntry": (NetworkAclEntryRequest, Response),
    "ReplaceNetworkAclEntry": (NetworkAclEntryRequest, Response),
    "DeleteNetworkAclEntry": (NetworkAclEntryRequest, Response),
    "ReplaceNetworkAclAssociation": (ReplaceNetworkAclAssociationRequest, NewAssociationResponse),
    "CreateFlowLogs": (CreateFlowLogsRequest, CreateFlowLogsResponse),
    "DeleteFlowLogs": (DeleteFlowLogsRequest, Response),
}


def touched(model: BaseModel | None) -> Iterator[tuple[Touches, str]]:
    """Every (kind, id) in a parsed model, following its `Touches` annotations."""
    if model is None:
        return
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        kind = next((m for m in info.metadata if isinstance(m, Touches)), None)
        if kind is not None:
            for id_ in value:
                if kind is Touches.RESOURCE:
                    prefix = next((p for p in _PREFIXES if id_.startswith(p)), None)
                    if prefix is not None:  # eni- and others: not part of a scope
                        yield _PREFIXES[prefix], id_
                else:
                    yield kind, id_
            continue
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, BaseModel):
                yield from touched(item)
