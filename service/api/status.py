"""The one table from ServiceError codes to gRPC status codes, with rich error details."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2

from service.errors import ErrorCode, ServiceError

GRPC_CODES: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.OVERLOADED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.EXPIRED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorCode.CANCELLED: grpc.StatusCode.CANCELLED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
}

STATUS_DETAILS_KEY = "grpc-status-details-bin"


def status_details(error: ServiceError) -> bytes:
    """A serialized google.rpc.Status; INVALID_ARGUMENT carries a BadRequest field violation."""
    grpc_code = GRPC_CODES[error.code]
    status = status_pb2.Status(code=grpc_code.value[0], message=error.message)
    if error.field and grpc_code == grpc.StatusCode.INVALID_ARGUMENT:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=error.field, description=error.message
                    )
                ]
            )
        )
        status.details.append(detail)
    elif error.field and grpc_code == grpc.StatusCode.NOT_FOUND:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.ResourceInfo(resource_type="model", description=error.message)
        )
        status.details.append(detail)
    assert status.code != code_pb2.OK
    return status.SerializeToString()


async def abort_with(context: grpc.aio.ServicerContext, error: ServiceError) -> None:
    """End the call with the error's status; never returns."""
    await context.abort(
        GRPC_CODES[error.code],
        error.message,
        trailing_metadata=((STATUS_DETAILS_KEY, status_details(error)),),
    )
