//! The leader lease on DynamoDB: one item per lease, keyed by `id`, written only with
//! conditional requests (the pattern of the Java `amazon-dynamodb-lock-client`).
//!
//! Item: `id` (S, the lease name), `owner` (S, absent once released), `version` (S,
//! random on every write), `epoch` (N, the fencing token), `renewed_at` (S, the
//! writer's wall clock, for people reading the table; nothing reads it back), and,
//! while another copy asks for the lease, `asked_by` (S) and `asked_holding` (N, how
//! many leases the asker held), removed by the holder's next renew. Spread leases
//! (`[leader] spread`) are one such item per shard, `NAME@shard` (`NAME@base` for the
//! base account's shard).
//!
//! Requests go out once, with SDK retries off: the elector owns retrying, because only
//! it knows how much of the lease is left. A failed condition is an answer (`false`),
//! not an error.
//!
//! The same table keeps the leader's state ([`DynamoState`]): operators' overrides in
//! one item `NAME#overrides` (`version`, `data`: the JSON list), replaced with a
//! condition on the version; and the snapshot: a head item
//! `NAME#snapshot` (its `generation`, `parts` and `bytes`) and the parts, each at most
//! [`SNAPSHOT_PART_BYTES`] (DynamoDB's items are at most 400 KB), in one of two slots
//! by generation, `NAME#snapshot#SLOT#INDEX` with `generation` and `data` (B). A save
//! writes the other slot's parts, then the head: a reader sees the old snapshot or the
//! new one, whole; a part whose generation is not the head's is a torn save, refused.
//! Each shard of a fleet has its own snapshot: the base account's as above, another's
//! under `NAME#snapshot@account/region`.
//!
//! What it must not do: judge a lease (the rules in `leader` do) or read another host's
//! clock: `renewed_at` is for people only.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ReturnValue,
    ScalarAttributeType,
};

use super::AwsError;
use crate::clock::Clock;
use crate::config::{AwsSettings, LeaderSettings};
use crate::leader::{Ask, Expected, LeaderElection, LeaseError, LeaseRecord, Renewal};

/// The IAM actions the lease needs on its table, and `CREATE_TABLE_ACTIONS` with
/// `create_table = true` (a table still being created answers "not found" for a few
/// seconds; the elector just reads again).
pub const LEASE_ACTIONS: [&str; 3] = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
];
pub const CREATE_TABLE_ACTIONS: [&str; 1] = ["dynamodb:CreateTable"];

pub struct DynamoLease {
    client: Client,
    table: String,
    name: String,
    create_table: bool,
    clock: Clock,
}

impl Clone for DynamoLease {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            table: self.table.clone(),
            name: self.name.clone(),
            create_table: self.create_table,
            clock: self.clock,
        }
    }
}

impl DynamoLease {
    /// A client with `[aws]`'s region and profile and `[leader]`'s endpoint. Each
    /// request must end well within the leader's write window, so the attempt timeout
    /// is the renew period.
    pub async fn connect(aws: &AwsSettings, leader: &LeaderSettings, clock: Clock) -> Self {
        use aws_config::retry::RetryConfig;
        use aws_config::timeout::TimeoutConfig;

        let timeout = leader.renew_every.min(Duration::from_secs(5));
        let loader = super::loader(aws, leader.endpoint_url.as_deref())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(timeout)
                    .operation_attempt_timeout(timeout)
                    .operation_timeout(timeout)
                    .build(),
            )
            .retry_config(RetryConfig::disabled());
        let shared = loader.load().await;
        Self {
            client: Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&shared)
                    .interceptor(super::AnswerLimit(super::answers::MAX_ANSWER_BYTES))
                    .build(),
            ),
            table: leader.table.clone(),
            name: leader.name.clone(),
            create_table: leader.create_table,
            clock,
        }
    }

    fn key(&self) -> AttributeValue {
        AttributeValue::S(self.name.clone())
    }

    fn now_text(&self) -> AttributeValue {
        AttributeValue::S(self.clock.now().to_rfc3339())
    }

    /// Applies `update` (which sets `:next` as the version and removes a request) if
    /// the item is still `owner`'s at `current`; the request it removed is answered.
    async fn update_held(
        &self,
        owner: &str,
        current: &str,
        next: &str,
        update: &str,
    ) -> Result<Renewal, LeaseError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", self.key())
            .update_expression(update)
            .condition_expression("#version = :current AND #owner = :owner")
            .expression_attribute_names("#version", "version")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":next", AttributeValue::S(next.to_owned()))
            .expression_attribute_values(":now", self.now_text())
            .expression_attribute_values(":current", AttributeValue::S(current.to_owned()))
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Renewal::Kept {
                asked: output.attributes().and_then(ask_from),
            }),
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => {
                Ok(Renewal::Lost)
            }
            Err(error) => Err(map_error(error)),
        }
    }
}

/// A failed condition is `Ok(false)`; anything else is an error.
fn conditional<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    result: Result<(), SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>>,
) -> Result<bool, LeaseError> {
    match result {
        Ok(()) => Ok(true),
        Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(false),
        Err(error) => Err(map_error(error)),
    }
}

/// The SDK error mapped as every other AWS error is ([`super::errors::from_sdk`]);
/// a client-side refusal (no table, no permission, a bad request) is one retrying
/// will not fix, anything else may pass.
fn map_error<E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static>(
    error: SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
) -> LeaseError {
    match super::errors::from_sdk(error) {
        refused @ (AwsError::Client { .. }
        | AwsError::InvalidParameter { .. }
        | AwsError::Credentials { .. }) => LeaseError::Refused(refused.to_string()),
        other => LeaseError::Unreachable(other.to_string()),
    }
}

fn record_from(item: &HashMap<String, AttributeValue>) -> Result<LeaseRecord, LeaseError> {
    let text = |name: &str| item.get(name).and_then(|value| value.as_s().ok()).cloned();
    let version = text("version")
        .ok_or_else(|| LeaseError::Refused("the lease item has no `version` string".into()))?;
    let epoch = item
        .get("epoch")
        .and_then(|value| value.as_n().ok())
        .and_then(|number| number.parse::<u64>().ok())
        .ok_or_else(|| LeaseError::Refused("the lease item has no whole `epoch`".into()))?;
    Ok(LeaseRecord {
        owner: text("owner"),
        version,
        epoch,
        asked: ask_from(item),
    })
}

fn ask_from(item: &HashMap<String, AttributeValue>) -> Option<Ask> {
    let by = item.get("asked_by")?.as_s().ok()?.clone();
    let holding = item.get("asked_holding")?.as_n().ok()?.parse().ok()?;
    Some(Ask { by, holding })
}

impl DynamoLease {
    /// The record, consistently read, and its `renewed_at` (the holder's wall clock)
    /// for people: the `leases` command prints it, nothing that judges a lease reads it.
    pub async fn read_for_people(
        &self,
    ) -> Result<Option<(LeaseRecord, Option<String>)>, LeaseError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", self.key())
            .consistent_read(true)
            .send()
            .await
            .map_err(map_error)?;
        let Some(item) = output.item() else {
            return Ok(None);
        };
        let renewed_at = item
            .get("renewed_at")
            .and_then(|value| value.as_s().ok())
            .cloned();
        Ok(Some((record_from(item)?, renewed_at)))
    }
}

impl LeaderElection for DynamoLease {
    async fn prepare(&self) -> Result<(), LeaseError> {
        if !self.create_table {
            return Ok(());
        }
        let attribute = AttributeDefinition::builder()
            .attribute_name("id")
            .attribute_type(ScalarAttributeType::S)
            .build()
            .expect("name and type are set");
        let key = KeySchemaElement::builder()
            .attribute_name("id")
            .key_type(KeyType::Hash)
            .build()
            .expect("name and key type are set");
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .attribute_definitions(attribute)
            .key_schema(key)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // Another copy created it first, or it was there already.
            Err(error) if error.code() == Some("ResourceInUseException") => Ok(()),
            Err(error) => Err(map_error(error)),
        }
    }

    async fn read(&self) -> Result<Option<LeaseRecord>, LeaseError> {
        let found = self.read_for_people().await?;
        Ok(found.map(|(record, _)| record))
    }

    async fn acquire(&self, record: &LeaseRecord, expected: &Expected) -> Result<bool, LeaseError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", self.key())
            .item("version", AttributeValue::S(record.version.clone()))
            .item("epoch", AttributeValue::N(record.epoch.to_string()))
            .item("renewed_at", self.now_text());
        if let Some(owner) = &record.owner {
            request = request.item("owner", AttributeValue::S(owner.clone()));
        }
        request = match expected {
            Expected::Absent => request.condition_expression("attribute_not_exists(id)"),
            Expected::Version(version) => request
                .condition_expression("#version = :expected")
                .expression_attribute_names("#version", "version")
                .expression_attribute_values(":expected", AttributeValue::S(version.clone())),
        };
        conditional(request.send().await.map(|_| ()))
    }

    async fn renew(&self, owner: &str, current: &str, next: &str) -> Result<Renewal, LeaseError> {
        self.update_held(
            owner,
            current,
            next,
            "SET #version = :next, renewed_at = :now REMOVE asked_by, asked_holding",
        )
        .await
    }

    async fn release(&self, owner: &str, current: &str, next: &str) -> Result<bool, LeaseError> {
        let released = self
            .update_held(
                owner,
                current,
                next,
                "SET #version = :next, renewed_at = :now REMOVE #owner, asked_by, asked_holding",
            )
            .await?;
        Ok(released != Renewal::Lost)
    }

    async fn ask(&self, owner: &str, ask: &Ask) -> Result<bool, LeaseError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", self.key())
            .update_expression("SET asked_by = :by, asked_holding = :holding")
            .condition_expression("#owner = :owner")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":owner", AttributeValue::S(owner.to_owned()))
            .expression_attribute_values(":by", AttributeValue::S(ask.by.clone()))
            .expression_attribute_values(":holding", AttributeValue::N(ask.holding.to_string()))
            .send()
            .await;
        conditional(result.map(|_| ()))
    }

    fn named(&self, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            ..self.clone()
        }
    }
}

/// The largest part of a snapshot, well within DynamoDB's 400 KB item limit.
pub const SNAPSHOT_PART_BYTES: usize = 300 * 1024;
/// Parts a snapshot may have: 30 MB in all, far above 5,000 targets' half megabyte.
const MAX_SNAPSHOT_PARTS: u64 = 100;

/// The leader's state in the lease table: the snapshot and the overrides.
pub struct DynamoState {
    client: Client,
    table: String,
    name: String,
}

impl DynamoState {
    pub async fn connect(aws: &AwsSettings, leader: &LeaderSettings) -> Self {
        use aws_config::timeout::TimeoutConfig;
        let timeout = Duration::from_secs(5);
        let loader = super::loader(aws, leader.endpoint_url.as_deref()).timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeout)
                .operation_attempt_timeout(timeout)
                .build(),
        );
        let shared = loader.load().await;
        Self {
            client: Client::from_conf(
                aws_sdk_dynamodb::config::Builder::from(&shared)
                    .interceptor(super::AnswerLimit(super::answers::MAX_ANSWER_BYTES))
                    .build(),
            ),
            table: leader.table.clone(),
            name: leader.name.clone(),
        }
    }

    /// The snapshot's head item: `NAME#snapshot` for the base shard, and
    /// `NAME#snapshot@account/region` for another.
    fn head_id(&self, slot: &str) -> String {
        if slot.is_empty() {
            format!("{}#snapshot", self.name)
        } else {
            format!("{}#snapshot@{slot}", self.name)
        }
    }

    fn part_id(&self, slot: &str, generation: u64, index: u64) -> String {
        format!("{}#{}#{index}", self.head_id(slot), generation % 2)
    }

    async fn get(&self, id: String) -> Result<Option<HashMap<String, AttributeValue>>, AwsError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("id", AttributeValue::S(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(super::errors::from_sdk)?;
        Ok(answer.item)
    }

    async fn put(&self, item: HashMap<String, AttributeValue>) -> Result<(), AwsError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map(|_| ())
            .map_err(super::errors::from_sdk)
    }
}

fn number(item: &HashMap<String, AttributeValue>, key: &str) -> Option<u64> {
    item.get(key)?.as_n().ok()?.parse().ok()
}

fn torn(why: &str) -> AwsError {
    AwsError::Malformed {
        message: format!("the snapshot in the lease table is torn: {why}"),
    }
}

impl super::SnapshotStore for DynamoState {
    async fn load(&self, slot: &str) -> Result<Option<Vec<u8>>, AwsError> {
        let Some(head) = self.get(self.head_id(slot)).await? else {
            return Ok(None);
        };
        let (Some(generation), Some(parts)) = (number(&head, "generation"), number(&head, "parts"))
        else {
            return Err(torn("its head lacks the generation or the parts"));
        };
        if parts > MAX_SNAPSHOT_PARTS {
            return Err(torn("too many parts"));
        }
        let mut bytes = Vec::new();
        for index in 0..parts {
            let part = self
                .get(self.part_id(slot, generation, index))
                .await?
                .ok_or_else(|| torn("a part is missing"))?;
            if number(&part, "generation") != Some(generation) {
                return Err(torn("a part is of another generation"));
            }
            let data = part
                .get("data")
                .and_then(|data| data.as_b().ok())
                .ok_or_else(|| torn("a part has no data"))?;
            bytes.extend_from_slice(data.as_ref());
        }
        Ok(Some(bytes))
    }

    async fn save(&self, slot: &str, bytes: Vec<u8>) -> Result<(), AwsError> {
        let before = self
            .get(self.head_id(slot))
            .await?
            .and_then(|head| number(&head, "generation"))
            .unwrap_or(0);
        let generation = before + 1;
        let chunks: Vec<&[u8]> = bytes.chunks(SNAPSHOT_PART_BYTES).collect();
        for (index, chunk) in chunks.iter().enumerate() {
            let item = HashMap::from([
                (
                    "id".to_owned(),
                    AttributeValue::S(self.part_id(slot, generation, index as u64)),
                ),
                (
                    "generation".to_owned(),
                    AttributeValue::N(generation.to_string()),
                ),
                (
                    "data".to_owned(),
                    AttributeValue::B(aws_smithy_types::Blob::new(chunk.to_vec())),
                ),
            ]);
            self.put(item).await?;
        }
        let head = HashMap::from([
            ("id".to_owned(), AttributeValue::S(self.head_id(slot))),
            (
                "generation".to_owned(),
                AttributeValue::N(generation.to_string()),
            ),
            (
                "parts".to_owned(),
                AttributeValue::N(chunks.len().to_string()),
            ),
            (
                "bytes".to_owned(),
                AttributeValue::N(bytes.len().to_string()),
            ),
        ]);
        self.put(head).await
    }
}

impl super::ItemTable for DynamoState {
    async fn load_item(&self, kind: super::Item) -> Result<Option<(Vec<u8>, u64)>, AwsError> {
        let Some(item) = self.get(format!("{}#{}", self.name, kind.key())).await? else {
            return Ok(None);
        };
        let version = number(&item, "version");
        let data = item.get("data").and_then(|data| data.as_s().ok());
        match (version, data) {
            (Some(version), Some(data)) => Ok(Some((data.clone().into_bytes(), version))),
            _ => Err(AwsError::Malformed {
                message: format!("the {} item lacks its version or its data", kind.key()),
            }),
        }
    }

    async fn save_item(
        &self,
        kind: super::Item,
        bytes: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<bool, AwsError> {
        let data = String::from_utf8(bytes).map_err(|_| AwsError::Malformed {
            message: format!("the {} are not UTF-8", kind.key()),
        })?;
        let next = expected.map_or(1, |version| version + 1);
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item(
                "id",
                AttributeValue::S(format!("{}#{}", self.name, kind.key())),
            )
            .item("version", AttributeValue::N(next.to_string()))
            .item("data", AttributeValue::S(data));
        let request = match expected {
            None => request.condition_expression("attribute_not_exists(id)"),
            Some(version) => request
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", AttributeValue::N(version.to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error) if error.code() == Some("ConditionalCheckFailedException") => Ok(false),
            Err(error) => Err(super::errors::from_sdk(error)),
        }
    }
}
