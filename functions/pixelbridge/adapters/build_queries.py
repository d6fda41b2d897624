"""Reading BuildsTable through its indexes: listings for operators, lookups for webhooks, the open set."""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from pixelbridge.adapters.dynamo_items import decode_cursor, encode_cursor, from_dynamo
from pixelbridge.domain.records import BuildRecord
from pixelbridge.ports import BuildPage, InvalidCursor

UPLOAD_ID_INDEX = "uploadId-index"
HANDOFF_TOKEN_INDEX = "handoffToken-index"  # noqa: S105 - an index name, not a secret
ROUTE_INDEX = "route-index"
# Sparse index of non-terminal builds (the reconciler's work list): OPEN_ATTRIBUTE is set while a
# build is open and removed by the write that makes it terminal, so the index never grows with history.
OPEN_INDEX = "open-index"
OPEN_ATTRIBUTE = "openShard"
OPEN_VALUE = "open"
RECENT_INDEX = "recent-index"
# Every build record carries this constant, the partition of RECENT_INDEX (all builds, newest first).
RECORD_KIND = "build"
MAX_LIST_QUERIES = 10


class BuildQueries:
    """The read side of ``BuildRepository``, which supplies ``_table``."""

    _table: Any

    def get(self, build_id: str) -> BuildRecord | None:
        item = self._table.get_item(Key={"buildId": build_id}, ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def open_builds(self, *, updated_before: str, limit: int = 200) -> list[BuildRecord]:
        """Non-terminal builds not updated since ``updated_before`` (oldest first, at most ``limit``)."""
        items: list[BuildRecord] = []
        kwargs: dict[str, Any] = {
            "IndexName": OPEN_INDEX,
            "KeyConditionExpression": Key(OPEN_ATTRIBUTE).eq(OPEN_VALUE)
            & Key("updatedAt").lt(updated_before),
        }
        while len(items) < limit:
            response = self._table.query(**kwargs, Limit=limit - len(items))
            items.extend(from_dynamo(item) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return items

    def list_builds(
        self,
        *,
        route: str | None = None,
        status: str | None = None,
        since: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> BuildPage:
        """Builds newest first (by ``receivedAt``), one route's or all; ``cursor`` continues a page.

        A status filter reads on until the page is full (at most ``MAX_LIST_QUERIES`` queries), and
        the cursor then points after the last build returned, so no match is skipped or repeated.
        """
        index, partition = (ROUTE_INDEX, "route") if route else (RECENT_INDEX, "kind")
        condition: Any = Key(partition).eq(route or RECORD_KIND)
        if since:
            condition = condition & Key("receivedAt").gte(since)
        query: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": condition,
            "ScanIndexForward": False,
        }
        start = decode_cursor(cursor, {"buildId", partition, "receivedAt"}) if cursor else None
        found: list[BuildRecord] = []
        for _ in range(MAX_LIST_QUERIES):
            if start:
                query["ExclusiveStartKey"] = start
            response = self._query_page(query, limit=limit - len(found) if not status else limit)
            for item in response.get("Items", []):
                if status is None or item.get("status") == status:
                    found.append(from_dynamo(item))
                if len(found) == limit:
                    last = {
                        "buildId": item["buildId"],
                        partition: item[partition],
                        "receivedAt": item["receivedAt"],
                    }
                    return BuildPage(found, encode_cursor(last))
            start = response.get("LastEvaluatedKey")
            if not start:
                return BuildPage(found, None)
        return BuildPage(found, encode_cursor(start))

    def _query_page(self, query: dict[str, Any], *, limit: int) -> dict[str, Any]:
        try:
            return dict(self._table.query(**query, Limit=limit))
        except ClientError as error:
            if (
                "ExclusiveStartKey" in query
                and error.response.get("Error", {}).get("Code") == "ValidationException"
            ):
                raise InvalidCursor("the 'next' cursor does not belong to this listing") from error
            raise

    def all_builds_for_route(self, route_id: str) -> list[BuildRecord]:
        """Every build of a route (paginated), newest first."""
        records: list[BuildRecord] = []
        cursor: str | None = None
        while True:
            page = self.list_builds(route=route_id, limit=100, cursor=cursor)
            records.extend(page.records)
            if page.cursor is None:
                return records
            cursor = page.cursor

    def find_by_upload_id(self, upload_id: str) -> BuildRecord | None:
        return self._first_in_index(UPLOAD_ID_INDEX, "uploadId", upload_id)

    def find_by_handoff_token(self, token: str) -> BuildRecord | None:
        return self._first_in_index(HANDOFF_TOKEN_INDEX, "handoffToken", token)

    def builds_for_route(
        self, route_id: str, *, newest_first: bool = True, limit: int = 25
    ) -> list[BuildRecord]:
        response = self._table.query(
            IndexName=ROUTE_INDEX,
            KeyConditionExpression=Key("route").eq(route_id),
            ScanIndexForward=not newest_first,
            Limit=limit,
        )
        return [from_dynamo(item) for item in response.get("Items", [])]

    def _first_in_index(self, index: str, attribute: str, value: str) -> BuildRecord | None:
        response = self._table.query(
            IndexName=index, KeyConditionExpression=Key(attribute).eq(value), Limit=1
        )
        items = response.get("Items", [])
        if not items:
            return None
        # GSIs may project only keys: read the full, consistent record.
        return self.get(str(items[0]["buildId"]))
