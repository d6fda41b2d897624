"""The replay ledger of signed webhooks: one item per delivery in the idempotency table, expired by TTL."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


class DynamoDeliveryLedger:
    """``first_seen`` is one conditional put: exactly one of two concurrent identical deliveries wins."""

    def __init__(self, table_name: str, *, dynamodb: Any) -> None:
        self._table = dynamodb.Table(table_name)

    def first_seen(self, key: str, *, now: int, expires_at: int) -> bool:
        try:
            self._table.put_item(
                Item={"id": key, "expiration": expires_at, "kind": "webhook-delivery"},
                # An item past its expiry may linger until DynamoDB's TTL sweep: it no longer counts.
                ConditionExpression="attribute_not_exists(id) OR expiration < :now",
                ExpressionAttributeValues={":now": now},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def forget(self, key: str) -> None:
        self._table.delete_item(Key={"id": key})
