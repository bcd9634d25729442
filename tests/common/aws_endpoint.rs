//! A local AWS endpoint for the integration tests: Lambda's REST-JSON operations for
//! provisioned concurrency and CloudWatch `GetMetricData` in the Smithy RPC v2 CBOR
//! protocol, on 127.0.0.1, with Lambda's semantics, scriptable faults, and a log of
//! every request.
//!
//! Semantics kept: a put starts `IN_PROGRESS` and becomes `READY` after
//! `allocation_delay`; a put or delete meanwhile is a 409 `ResourceConflictException`;
//! `$LATEST`, a weighted alias, more than the function's reserved concurrency (all
//! qualifiers together) and leaving less than 100 unreserved concurrency in the
//! account are 400 `InvalidParameterValueException`. Errors carry `X-Amzn-ErrorType`
//! and a JSON body as Lambda sends them (CBOR with `__type` for CloudWatch).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ciborium::Value as Cbor;
use serde_json::{Value as Json, json};

/// The account's concurrency limit.
pub const ACCOUNT_LIMIT: u32 = 1_000;
/// Lambda keeps at least this much of the account unreserved.
pub const UNRESERVED_FLOOR: u32 = 100;

/// A fault to inject into the next request of one operation.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 `TooManyRequestsException`; `retry_after` goes in the body as a string.
    Throttle { retry_after: Option<u32> },
    /// 409 `ResourceConflictException`.
    Conflict,
    /// 400 `InvalidParameterValueException`.
    InvalidParameter,
    /// 500 `ServiceException`.
    ServerError,
    /// No answer for this long (longer than the client's timeout).
    Hang(Duration),
    /// 200 with a body that is not JSON (or CBOR).
    Malformed,
    /// 403 `AccessDeniedException`, as while a new IAM policy propagates.
    AccessDenied,
    /// 403 `AccessDeniedException` with this message, as a hostile or broken service
    /// might answer (control characters and all).
    DeniedWith(&'static str),
    /// `GetMetricData` only: every result marked `PartialData` with no `NextToken`,
    /// its newest datapoints left out.
    PartialData,
    /// 200 with a body of this many bytes, streamed (never held here): what a hostile
    /// or broken service might send.
    Huge(u64),
}

/// One request as the endpoint saw it.
#[derive(Debug, Clone)]
pub struct Logged {
    pub operation: &'static str,
    pub function: Option<String>,
    pub qualifier: Option<String>,
    /// The value of a put.
    pub value: Option<u32>,
    pub status: u16,
    pub at: Instant,
    /// For `GetMetricData`: how many queries the request carried.
    pub queries: usize,
    /// The caller's SDK app id (`AWS_SDK_UA_APP_ID`), from its user agent: which
    /// copy of the daemon sent the request.
    pub caller: Option<String>,
}

/// A metric's name and its dimensions, sorted by name.
pub type SeriesKey = (String, Vec<(String, String)>);

#[derive(Debug, Clone)]
pub struct Config {
    pub requested: u32,
    pub status: &'static str,
    /// Why an allocation FAILED, as Lambda's `StatusReason` says.
    pub status_reason: Option<String>,
    pub since: Instant,
    pub last_modified: String,
}

#[derive(Debug, Clone, Default)]
pub struct Function {
    pub reserved: Option<u32>,
    /// While set, every allocation of the function ends `FAILED` with this reason, as
    /// Lambda's does when the function's init fails; clear it to fix the cause.
    pub init_fails: Option<String>,
    /// Alias name → whether it has routing weights.
    pub aliases: HashMap<String, bool>,
    /// Alias name → the version it routes to (default "3"; a weighted one also sends
    /// a share to "4").
    pub alias_versions: HashMap<String, String>,
    /// `MemorySize` in MB (default 128) and whether it runs on arm64.
    pub memory_mb: Option<u32>,
    pub arm64: bool,
    /// Its published versions have SnapStart on: Lambda refuses provisioned
    /// concurrency on them.
    pub snap_start: bool,
    /// The function's tags, as the tagging API's `GetResources` finds them.
    pub tags: BTreeMap<String, String>,
    pub configs: BTreeMap<String, Config>,
}

/// Everything the endpoint knows; tests change it directly.
#[derive(Debug)]
pub struct World {
    pub functions: HashMap<String, Function>,
    pub allocation_delay: Duration,
    pub faults: HashMap<&'static str, VecDeque<Fault>>,
    /// (metric name, sorted dimensions) → (epoch seconds, value) in time order.
    pub series: HashMap<SeriesKey, Vec<(i64, f64)>>,
    /// Datapoints per `GetMetricData` page before a `NextToken` is given.
    pub page_size: usize,
    /// `GetAccountSettings` leaves out `UnreservedConcurrentExecutions`.
    pub withhold_unreserved: bool,
    /// The account's concurrency limit.
    pub account_limit: u32,
    /// Lambda's shared control-plane limit, requests per second (every API but
    /// `GetFunction`); beyond it a 429 with `Reason: CallerRateLimitExceeded`.
    pub shared_limit: Option<u32>,
    /// When the shared-limit requests of the last second came.
    shared_recent: VecDeque<Instant>,
    /// Functions per `GetResources` page (and `ListFunctions`) before a token is given.
    pub list_page_size: usize,
    /// Roles whose `AssumeRole` is refused (403 `AccessDenied`).
    pub denied_roles: std::collections::HashSet<String>,
    /// Every `AssumeRole`: the role and the external id.
    pub assumed: Vec<(String, Option<String>)>,
    /// Application Auto Scaling's Lambda targets: (function, qualifier, min, max).
    pub scalable_targets: Vec<(String, String, u32, u32)>,
    /// What each scalable target has suspended (dynamic in, dynamic out, scheduled),
    /// by (function, qualifier); absent until `RegisterScalableTarget` sets it.
    pub suspended: HashMap<(String, String), [bool; 3]>,
    pub log: Vec<Logged>,
}

impl World {
    fn new() -> Self {
        Self {
            functions: HashMap::new(),
            allocation_delay: Duration::from_millis(300),
            faults: HashMap::new(),
            series: HashMap::new(),
            page_size: 100_800,
            withhold_unreserved: false,
            account_limit: ACCOUNT_LIMIT,
            shared_limit: None,
            shared_recent: VecDeque::new(),
            list_page_size: 50,
            denied_roles: Default::default(),
            assumed: Vec::new(),
            scalable_targets: Vec::new(),
            suspended: HashMap::new(),
            log: Vec::new(),
        }
    }

    /// A function; any function a request names exists, without reserved concurrency.
    pub fn function(&mut self, name: &str) -> &mut Function {
        self.functions.entry(name.to_owned()).or_default()
    }

    /// Sets a qualifier's config as if a put had finished.
    pub fn set_config(&mut self, function: &str, qualifier: &str, requested: u32) {
        self.function(function).configs.insert(
            qualifier.to_owned(),
            Config {
                requested,
                status: "READY",
                status_reason: None,
                since: Instant::now() - Duration::from_secs(3600),
                last_modified: "2026-01-01T00:00:00.000+0000".into(),
            },
        );
    }

    /// Sets a qualifier's config as Lambda leaves it after an init failure: `requested`
    /// asked, nothing allocated, `FAILED` with `reason`.
    pub fn set_failed(&mut self, function: &str, qualifier: &str, requested: u32, reason: &str) {
        self.set_config(function, qualifier, requested);
        let config = self
            .function(function)
            .configs
            .get_mut(qualifier)
            .expect("just set");
        config.status = "FAILED";
        config.status_reason = Some(reason.to_owned());
    }

    pub fn inject(&mut self, operation: &'static str, faults: impl IntoIterator<Item = Fault>) {
        self.faults.entry(operation).or_default().extend(faults);
    }

    /// The faults injected for `operation` that no request has met yet: a fault is
    /// taken when its request arrives, so 0 after one `inject` means it is on the wire.
    pub fn faults_left(&self, operation: &str) -> usize {
        self.faults.get(operation).map_or(0, VecDeque::len)
    }

    /// Sets the `ConcurrentExecutions` series of `function:qualifier`, one value a
    /// minute ending `lag_minutes` ago.
    pub fn set_concurrency(
        &mut self,
        function: &str,
        qualifier: &str,
        values: &[f64],
        lag_minutes: i64,
    ) {
        let now = chrono::Utc::now().timestamp() / 60 * 60;
        let count = values.len() as i64;
        let points = values
            .iter()
            .enumerate()
            .map(|(index, value)| (now - 60 * (lag_minutes + count - 1 - index as i64), *value))
            .collect();
        self.series
            .insert(concurrency_key(function, qualifier), points);
    }

    /// Sets the series `metric` of `function:qualifier` to `values`, one a minute from
    /// `start` (epoch seconds, on a minute).
    pub fn set_series(
        &mut self,
        metric: &str,
        (function, qualifier): (&str, &str),
        start: i64,
        values: impl IntoIterator<Item = f64>,
    ) {
        let (_, dimensions) = concurrency_key(function, qualifier);
        let points = values
            .into_iter()
            .enumerate()
            .map(|(minute, value)| (start + 60 * minute as i64, value))
            .collect();
        self.series.insert((metric.to_owned(), dimensions), points);
    }

    /// Extends the `ConcurrentExecutions` series of `function:qualifier` with `value`
    /// once a minute up to `lag_minutes` ago, as CloudWatch's moves on; a new series
    /// starts `history_minutes` back.
    pub fn extend_concurrency(
        &mut self,
        function: &str,
        qualifier: &str,
        value: f64,
        lag_minutes: i64,
        history_minutes: i64,
    ) {
        let newest = chrono::Utc::now().timestamp() / 60 - lag_minutes;
        let points = self
            .series
            .entry(concurrency_key(function, qualifier))
            .or_default();
        let from = points
            .last()
            .map_or(newest - history_minutes + 1, |(time, _)| time / 60 + 1);
        points.extend((from..=newest).map(|minute| (minute * 60, value)));
    }

    /// The requests of one operation.
    pub fn requests(&self, operation: &str) -> Vec<Logged> {
        self.log
            .iter()
            .filter(|logged| logged.operation == operation)
            .cloned()
            .collect()
    }

    /// Counts one request against the shared limit; true when it is over.
    fn over_shared_limit(&mut self) -> bool {
        let Some(limit) = self.shared_limit else {
            return false;
        };
        let now = Instant::now();
        while self
            .shared_recent
            .front()
            .is_some_and(|at| now.duration_since(*at) >= Duration::from_secs(1))
        {
            self.shared_recent.pop_front();
        }
        if self.shared_recent.len() >= limit as usize {
            return true;
        }
        self.shared_recent.push_back(now);
        false
    }

    /// Ends finished allocations: READY, or FAILED while the function's init fails.
    fn settle(&mut self) {
        let delay = self.allocation_delay;
        for function in self.functions.values_mut() {
            for config in function.configs.values_mut() {
                if config.status == "IN_PROGRESS" && config.since.elapsed() >= delay {
                    match &function.init_fails {
                        Some(reason) => {
                            config.status = "FAILED";
                            config.status_reason = Some(reason.clone());
                        }
                        None => config.status = "READY",
                    }
                }
            }
        }
    }

    fn unreserved(&self) -> u32 {
        let reserved: u32 = self
            .functions
            .values()
            .filter_map(|function| function.reserved)
            .sum();
        let provisioned: u32 = self
            .functions
            .values()
            .filter(|function| function.reserved.is_none())
            .flat_map(|function| function.configs.values())
            .map(|config| config.requested)
            .sum();
        self.account_limit
            .saturating_sub(reserved)
            .saturating_sub(provisioned)
    }
}

/// Worlds of other accounts and Regions, by (account id, Region): a request signed
/// with a key that `AssumeRole` gave out for an account goes to its world in the
/// Region of its signing scope.
type Scopes = Arc<Mutex<HashMap<(String, String), Arc<Mutex<World>>>>>;

/// A running endpoint. Dropping it leaves the server thread to end with the test.
pub struct Endpoint {
    pub url: String,
    world: Arc<Mutex<World>>,
    scopes: Scopes,
}

impl Endpoint {
    pub fn start() -> Self {
        let world = Arc::new(Mutex::new(World::new()));
        let scopes = Scopes::default();
        let (shared, shared_scopes) = (world.clone(), scopes.clone());
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("the endpoint's runtime starts");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind 127.0.0.1");
                let address: SocketAddr = listener.local_addr().expect("a local address");
                sender
                    .send(address)
                    .expect("the test waits for the address");
                let app = axum::Router::new().fallback(
                    move |method, uri, headers: HeaderMap, body: Bytes| {
                        route(
                            shared.clone(),
                            shared_scopes.clone(),
                            method,
                            uri,
                            headers,
                            body,
                        )
                    },
                );
                axum::serve(listener, app)
                    .await
                    .expect("the endpoint serves");
            });
        });
        let address = receiver.recv().expect("the endpoint reports its address");
        Self {
            url: format!("http://{address}"),
            world,
            scopes,
        }
    }

    /// The world of the base credentials (and of STS and every unscoped request).
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().expect("the world lock is not poisoned")
    }

    /// The world of `account` in `region`, made on first use.
    pub fn scope(&self, account: &str, region: &str) -> Arc<Mutex<World>> {
        self.scopes
            .lock()
            .expect("the scopes lock is not poisoned")
            .entry((account.to_owned(), region.to_owned()))
            .or_insert_with(|| Arc::new(Mutex::new(World::new())))
            .clone()
    }
}

/// The access key `AssumeRole` gives out for an account: the account is read back
/// from it when a request is signed with it.
fn access_key_of(account: &str) -> String {
    format!("ASIA{account}")
}

/// The access key and Region of a request's SigV4 signing scope.
fn signing_scope(headers: &HeaderMap) -> Option<(String, String)> {
    let authorization = headers.get("authorization")?.to_str().ok()?;
    let credential = authorization.split("Credential=").nth(1)?;
    let mut parts = credential.split(['/', ',']);
    let key = parts.next()?.to_owned();
    let _date = parts.next()?;
    Some((key, parts.next()?.to_owned()))
}

/// Sends a request to STS, the tagging API, or the world its signature names.
async fn route(
    base: Arc<Mutex<World>>,
    scopes: Scopes,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let scope = signing_scope(&headers).and_then(|(key, region)| {
        let account = key.strip_prefix("ASIA")?.to_owned();
        Some((account, region))
    });
    let world = match scope {
        Some(scope) => {
            let found = scopes
                .lock()
                .expect("the scopes lock is not poisoned")
                .get(&scope)
                .cloned();
            match found {
                Some(world) => world,
                None => {
                    return lambda_error(
                        403,
                        "UnrecognizedClientException",
                        &format!("no account {} in Region {} here", scope.0, scope.1),
                        json!({}),
                    );
                }
            }
        }
        None => base.clone(),
    };
    let target = headers
        .get("x-amz-target")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if target == "ResourceGroupsTaggingAPI_20170126.GetResources" {
        if let Some(response) = json_fault(&world, "GetResources") {
            return response;
        }
        return get_resources(&world, &headers, &body);
    }
    if target == "AWSEvents.PutEvents" {
        if let Some(response) = json_fault(&world, "PutEvents") {
            return response;
        }
        return put_events(&world, &body);
    }
    if let Some(operation) = target.strip_prefix("AnyScaleFrontendService.") {
        return application_auto_scaling(&world, operation, &body, caller_of(&headers));
    }
    if method == Method::POST && String::from_utf8_lossy(&body).contains("Action=AssumeRole") {
        return assume_role(&base, &body);
    }
    handle(world, method, uri, headers, body).await
}

/// The next fault of a JSON 1.1 `operation`, logged, as its response.
fn json_fault(world: &Arc<Mutex<World>>, operation: &'static str) -> Option<Response> {
    let mut world = world.lock().expect("the world lock is not poisoned");
    let fault = world.faults.get_mut(operation)?.pop_front()?;
    let response = fault_response(&fault, false)?;
    world.log.push(Logged {
        operation,
        function: None,
        qualifier: None,
        value: None,
        status: response.status().as_u16(),
        at: Instant::now(),
        queries: 0,
        caller: None,
    });
    Some(response)
}

/// EventBridge `PutEvents`: every entry accepted.
fn put_events(world: &Arc<Mutex<World>>, body: &[u8]) -> Response {
    let request: Json = serde_json::from_slice(body).unwrap_or_default();
    let count = request["Entries"].as_array().map_or(0, Vec::len);
    let entries: Vec<Json> = (0..count)
        .map(|index| json!({ "EventId": index.to_string() }))
        .collect();
    let mut world = world.lock().expect("the world lock is not poisoned");
    json_11(
        &mut world,
        "PutEvents",
        json!({ "FailedEntryCount": 0, "Entries": entries }),
    )
}

/// A body of `left` spaces, a chunk at a time.
struct Spaces {
    left: u64,
}

impl http_body::Body for Spaces {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        const CHUNK: u64 = 64 * 1024;
        if self.left == 0 {
            return std::task::Poll::Ready(None);
        }
        let size = self.left.min(CHUNK);
        self.left -= size;
        let chunk = Bytes::from(vec![b' '; size as usize]);
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(chunk))))
    }
}

fn form_value(body: &[u8], name: &str) -> Option<String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| decode(&value.replace('+', " ")))
}

/// STS `AssumeRole` (query protocol, XML): credentials whose access key names the
/// role's account, or 403 for a denied role.
fn assume_role(base: &Arc<Mutex<World>>, body: &[u8]) -> Response {
    let role = form_value(body, "RoleArn").unwrap_or_default();
    let external_id = form_value(body, "ExternalId");
    let mut world = base.lock().expect("the world lock is not poisoned");
    world.assumed.push((role.clone(), external_id));
    let xml = |status: u16, text: String| {
        let mut response =
            (StatusCode::from_u16(status).expect("a valid status"), text).into_response();
        response
            .headers_mut()
            .insert("content-type", HeaderValue::from_static("text/xml"));
        response
    };
    if world.denied_roles.contains(&role) {
        return xml(
            403,
            format!(
                "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to perform: sts:AssumeRole on resource: {role}</Message></Error><RequestId>1</RequestId></ErrorResponse>"
            ),
        );
    }
    let account = role.split(':').nth(4).unwrap_or_default().to_owned();
    let expires = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).format("%Y-%m-%dT%H:%M:%SZ");
    xml(
        200,
        format!(
            "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken><Expiration>{expires}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROA:{account}</AssumedRoleId><Arn>arn:aws:sts::{account}:assumed-role/role/session</Arn></AssumedRoleUser></AssumeRoleResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></AssumeRoleResponse>",
            access_key_of(&account)
        ),
    )
}

/// Application Auto Scaling (JSON 1.1), one page each: `DescribeScalableTargets`,
/// `DescribeScheduledActions` (each target with one), `DescribeScalingPolicies` (none)
/// and `RegisterScalableTarget` of a suspended state.
fn application_auto_scaling(
    world: &Arc<Mutex<World>>,
    operation: &str,
    request: &[u8],
    caller: Option<String>,
) -> Response {
    let mut world = world.lock().expect("the world lock is not poisoned");
    let resource = |function: &str, qualifier: &str| format!("function:{function}:{qualifier}");
    let body = match operation {
        "DescribeScalableTargets" => {
            let targets: Vec<Json> = world
                .scalable_targets
                .iter()
                .map(|(function, qualifier, min, max)| {
                    let mut target = json!({
                        "ServiceNamespace": "lambda",
                        "ResourceId": resource(function, qualifier),
                        "ScalableDimension": "lambda:function:ProvisionedConcurrency",
                        "MinCapacity": min,
                        "MaxCapacity": max,
                        "RoleARN": "arn:aws:iam::123456789012:role/aws-service-role/lambda.application-autoscaling.amazonaws.com/AWSServiceRoleForApplicationAutoScaling_LambdaConcurrency",
                        "CreationTime": 1_700_000_000.0,
                    });
                    if let Some([dynamic_in, dynamic_out, scheduled]) =
                        world.suspended.get(&(function.clone(), qualifier.clone()))
                    {
                        target["SuspendedState"] = json!({
                            "DynamicScalingInSuspended": dynamic_in,
                            "DynamicScalingOutSuspended": dynamic_out,
                            "ScheduledScalingSuspended": scheduled,
                        });
                    }
                    target
                })
                .collect();
            json!({ "ScalableTargets": targets })
        }
        "DescribeScalingPolicies" => json!({ "ScalingPolicies": [] }),
        "RegisterScalableTarget" => {
            let request: Json = serde_json::from_slice(request).unwrap_or_default();
            let id = request["ResourceId"].as_str().unwrap_or_default();
            let mut parts = id.splitn(3, ':').skip(1);
            let key = (
                parts.next().unwrap_or_default().to_owned(),
                parts.next().unwrap_or_default().to_owned(),
            );
            let state = &request["SuspendedState"];
            let flag = |name: &str| state[name].as_bool().unwrap_or(false);
            world.suspended.insert(
                key,
                [
                    flag("DynamicScalingInSuspended"),
                    flag("DynamicScalingOutSuspended"),
                    flag("ScheduledScalingSuspended"),
                ],
            );
            json!({})
        }
        "DescribeScheduledActions" => {
            let actions: Vec<Json> = world
                .scalable_targets
                .iter()
                .map(|(function, qualifier, _, _)| {
                    json!({
                        "ScheduledActionName": format!("{function}-mornings"),
                        "ScheduledActionARN": format!("arn:aws:autoscaling:us-east-1:123456789012:scheduledAction:1:{function}"),
                        "ServiceNamespace": "lambda",
                        "Schedule": "cron(0 8 * * ? *)",
                        "ResourceId": resource(function, qualifier),
                        "ScalableDimension": "lambda:function:ProvisionedConcurrency",
                        "CreationTime": 1_700_000_000.0,
                    })
                })
                .collect();
            json!({ "ScheduledActions": actions })
        }
        other => {
            return lambda_error(
                400,
                "UnknownOperationException",
                &format!("no {other}"),
                json!({}),
            );
        }
    };
    let operation = match operation {
        "DescribeScalableTargets" => "DescribeScalableTargets",
        "DescribeScalingPolicies" => "DescribeScalingPolicies",
        "RegisterScalableTarget" => "RegisterScalableTarget",
        _ => "DescribeScheduledActions",
    };
    let response = json_11(&mut world, operation, body);
    if let Some(logged) = world.log.last_mut() {
        logged.caller = caller;
    }
    response
}

/// A JSON 1.1 answer of `operation`, logged.
fn json_11(world: &mut World, operation: &'static str, body: Json) -> Response {
    world.log.push(Logged {
        operation,
        function: None,
        qualifier: None,
        value: None,
        status: 200,
        at: Instant::now(),
        queries: 0,
        caller: None,
    });
    let mut response = json_response(200, body);
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    response
}

/// The tagging API's `GetResources` (JSON 1.1) over the world's functions, paged.
fn get_resources(world: &Arc<Mutex<World>>, headers: &HeaderMap, body: &[u8]) -> Response {
    let request: Json = serde_json::from_slice(body).unwrap_or_default();
    let region = signing_scope(headers).map_or_else(|| "us-east-1".to_owned(), |scope| scope.1);
    let mut world = world.lock().expect("the world lock is not poisoned");
    let filters: Vec<(String, Vec<String>)> = request["TagFilters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|filter| {
            let key = filter["Key"].as_str().unwrap_or_default().to_owned();
            let values = filter["Values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|value| value.as_str().map(str::to_owned))
                .collect();
            (key, values)
        })
        .collect();
    let mut names: Vec<&String> = world
        .functions
        .iter()
        .filter(|(_, function)| {
            !function.tags.is_empty()
                && filters.iter().all(|(key, values)| {
                    function
                        .tags
                        .get(key)
                        .is_some_and(|value| values.is_empty() || values.contains(value))
                })
        })
        .map(|(name, _)| name)
        .collect();
    names.sort();
    let start: usize = request["PaginationToken"]
        .as_str()
        .and_then(|token| token.parse().ok())
        .unwrap_or(0);
    let end = (start + world.list_page_size).min(names.len());
    let mappings: Vec<Json> = names[start.min(end)..end]
        .iter()
        .map(|name| {
            let tags: Vec<Json> = world.functions[*name]
                .tags
                .iter()
                .map(|(key, value)| json!({ "Key": key, "Value": value }))
                .collect();
            json!({ "ResourceARN": format!("arn:aws:lambda:{region}:123456789012:function:{name}"), "Tags": tags })
        })
        .collect();
    let token = if end < names.len() {
        end.to_string()
    } else {
        String::new()
    };
    json_11(
        &mut world,
        "GetResources",
        json!({ "PaginationToken": token, "ResourceTagMappingList": mappings }),
    )
}

fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Ok(byte) =
                u8::from_str_radix(&String::from_utf8_lossy(&bytes[index + 1..index + 3]), 16)
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| decode(value))
}

/// The function name from a name or ARN path segment.
fn function_of(segment: &str) -> String {
    let decoded = decode(segment);
    match decoded.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] => (*name).to_owned(),
        _ => decoded,
    }
}

fn lambda_error(status: u16, kind: &str, message: &str, extra: Json) -> Response {
    let mut body = json!({ "Type": "User", "message": message });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let mut response = (
        StatusCode::from_u16(status).expect("a valid status"),
        body.to_string(),
    )
        .into_response();
    response.headers_mut().insert(
        "x-amzn-errortype",
        HeaderValue::from_str(kind).expect("a header value"),
    );
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

fn json_response(status: u16, body: Json) -> Response {
    let mut response = (
        StatusCode::from_u16(status).expect("a valid status"),
        body.to_string(),
    )
        .into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    response
}

fn cbor_response(status: u16, body: Cbor) -> Response {
    let mut bytes = Vec::new();
    ciborium::into_writer(&body, &mut bytes).expect("CBOR encodes");
    let mut response =
        (StatusCode::from_u16(status).expect("a valid status"), bytes).into_response();
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static("application/cbor"));
    response
        .headers_mut()
        .insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    response
}

fn fault_response(fault: &Fault, cbor: bool) -> Option<Response> {
    let (status, kind, message, extra) = match fault {
        Fault::Throttle { retry_after } => (
            429,
            "TooManyRequestsException",
            "Rate exceeded",
            match retry_after {
                Some(seconds) => {
                    json!({ "Reason": "CallerRateLimitExceeded", "retryAfterSeconds": seconds.to_string() })
                }
                None => json!({ "Reason": "CallerRateLimitExceeded" }),
            },
        ),
        Fault::Conflict => (
            409,
            "ResourceConflictException",
            "An update is in progress for resource",
            json!({}),
        ),
        Fault::InvalidParameter => (
            400,
            "InvalidParameterValueException",
            "Injected invalid parameter",
            json!({}),
        ),
        Fault::ServerError => (500, "ServiceException", "Internal failure", json!({})),
        Fault::AccessDenied => (
            403,
            "AccessDeniedException",
            "User is not authorized to perform: lambda:PutProvisionedConcurrencyConfig",
            json!({}),
        ),
        Fault::DeniedWith(message) => (403, "AccessDeniedException", *message, json!({})),
        Fault::PartialData => return None,
        Fault::Huge(bytes) => {
            let mut response = Response::new(axum::body::Body::new(Spaces { left: *bytes }));
            response.headers_mut().insert(
                "content-type",
                HeaderValue::from_static(if cbor {
                    "application/cbor"
                } else {
                    "application/json"
                }),
            );
            return Some(response);
        }
        Fault::Malformed => {
            return Some(if cbor {
                let mut response = (StatusCode::OK, vec![0xff_u8, 0x00, 0x13]).into_response();
                response
                    .headers_mut()
                    .insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
                response
            } else {
                let mut response = (StatusCode::OK, "{\"Requested").into_response();
                response
                    .headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                response
            });
        }
        Fault::Hang(_) => return None,
    };
    Some(if cbor {
        cbor_response(
            status,
            Cbor::Map(vec![
                (
                    Cbor::Text("__type".into()),
                    Cbor::Text(format!("com.amazonaws.cloudwatch#{kind}")),
                ),
                (Cbor::Text("message".into()), Cbor::Text(message.into())),
            ]),
        )
    } else {
        lambda_error(status, kind, message, extra)
    })
}

fn config_json(config: &Config) -> Json {
    let allocated = if config.status == "READY" {
        config.requested
    } else {
        0
    };
    json!({
        "RequestedProvisionedConcurrentExecutions": config.requested,
        "AvailableProvisionedConcurrentExecutions": allocated,
        "AllocatedProvisionedConcurrentExecutions": allocated,
        "Status": config.status,
        "StatusReason": config.status_reason,
        "LastModified": config.last_modified,
    })
}

/// The caller's SDK app id, from its user agent.
fn caller_of(headers: &HeaderMap) -> Option<String> {
    ["x-amz-user-agent", "user-agent"].iter().find_map(|name| {
        headers
            .get(*name)?
            .to_str()
            .ok()?
            .split_whitespace()
            .find_map(|token| token.strip_prefix("app/"))
            .map(str::to_owned)
    })
}

async fn handle(
    world: Arc<Mutex<World>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = caller_of(&headers);
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let (operation, function, qualifier): (&'static str, Option<String>, Option<String>) =
        match (&method, segments.as_slice()) {
            (&Method::GET, ["2019-09-30", "functions", f, "provisioned-concurrency"])
                if query_param(&uri, "List").is_some() =>
            {
                (
                    "ListProvisionedConcurrencyConfigs",
                    Some(function_of(f)),
                    None,
                )
            }
            (&Method::GET, ["2019-09-30", "functions", f, "provisioned-concurrency"]) => (
                "GetProvisionedConcurrencyConfig",
                Some(function_of(f)),
                query_param(&uri, "Qualifier"),
            ),
            (&Method::PUT, ["2019-09-30", "functions", f, "provisioned-concurrency"]) => (
                "PutProvisionedConcurrencyConfig",
                Some(function_of(f)),
                query_param(&uri, "Qualifier"),
            ),
            (&Method::DELETE, ["2019-09-30", "functions", f, "provisioned-concurrency"]) => (
                "DeleteProvisionedConcurrencyConfig",
                Some(function_of(f)),
                query_param(&uri, "Qualifier"),
            ),
            (&Method::GET, ["2015-03-31", "functions", ""]) => ("ListFunctions", None, None),
            (&Method::GET, ["2015-03-31", "functions"]) => ("ListFunctions", None, None),
            (&Method::GET, ["2015-03-31", "functions", f]) => (
                "GetFunction",
                Some(function_of(f)),
                query_param(&uri, "Qualifier"),
            ),
            (&Method::GET, ["2015-03-31", "functions", f, "aliases"]) => {
                ("ListAliases", Some(function_of(f)), None)
            }
            (&Method::GET, ["2016-08-19", "account-settings"]) => {
                ("GetAccountSettings", None, None)
            }
            (
                &Method::POST,
                [
                    "service",
                    "GraniteServiceVersion20100801",
                    "operation",
                    "GetMetricData",
                ],
            ) => ("GetMetricData", None, None),
            _ => {
                return lambda_error(
                    404,
                    "UnknownOperationException",
                    &format!("no operation at {method} {}", uri.path()),
                    json!({}),
                );
            }
        };
    let cbor = operation == "GetMetricData";
    let value = if operation == "PutProvisionedConcurrencyConfig" {
        serde_json::from_slice::<Json>(&body)
            .ok()
            .and_then(|body| {
                body.get("ProvisionedConcurrentExecutions")
                    .and_then(Json::as_u64)
            })
            .map(|value| value as u32)
    } else {
        None
    };

    let fault = {
        let mut world = world.lock().expect("the world lock is not poisoned");
        let over_limit =
            operation != "GetMetricData" && operation != "GetFunction" && world.over_shared_limit();
        if over_limit {
            Some(Fault::Throttle { retry_after: None })
        } else {
            world
                .faults
                .get_mut(operation)
                .and_then(VecDeque::pop_front)
        }
    };
    if let Some(Fault::Hang(duration)) = &fault {
        tokio::time::sleep(*duration).await;
    }

    let mut world = world.lock().expect("the world lock is not poisoned");
    world.settle();
    let mut queries = 0;
    let response = match fault.as_ref().and_then(|fault| fault_response(fault, cbor)) {
        Some(response) => response,
        None => match operation {
            "GetMetricData" => {
                let partial = matches!(fault, Some(Fault::PartialData));
                let (response, count) = get_metric_data(&world, &body, partial);
                queries = count;
                response
            }
            "ListFunctions" => list_functions(&world, query_param(&uri, "Marker")),
            _ => lambda_operation(
                &mut world,
                operation,
                function.clone(),
                qualifier.clone(),
                value,
            ),
        },
    };
    world.log.push(Logged {
        operation,
        function,
        qualifier,
        value,
        status: response.status().as_u16(),
        at: Instant::now(),
        queries,
        caller,
    });
    response
}

/// `ListFunctions`, `list_page_size` names a page.
fn list_functions(world: &World, marker: Option<String>) -> Response {
    let mut names: Vec<&String> = world.functions.keys().collect();
    names.sort();
    let start: usize = marker.and_then(|marker| marker.parse().ok()).unwrap_or(0);
    let end = (start + world.list_page_size).min(names.len());
    let functions: Vec<Json> = names[start.min(end)..end]
        .iter()
        .map(|name| {
            let function = &world.functions[*name];
            json!({
                "FunctionName": name,
                "FunctionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:{name}"),
                "MemorySize": function.memory_mb.unwrap_or(128),
                "Architectures": [if function.arm64 { "arm64" } else { "x86_64" }],
            })
        })
        .collect();
    let mut body = json!({ "Functions": functions });
    if end < names.len() {
        body["NextMarker"] = json!(end.to_string());
    }
    json_response(200, body)
}

fn lambda_operation(
    world: &mut World,
    operation: &str,
    function: Option<String>,
    qualifier: Option<String>,
    value: Option<u32>,
) -> Response {
    let function = function.unwrap_or_default();
    let qualifier = qualifier.unwrap_or_default();
    match operation {
        "GetAccountSettings" => {
            let mut limit = json!({ "TotalCodeSize": 80_530_636_800_u64, "CodeSizeUnzipped": 262_144_000, "CodeSizeZipped": 52_428_800,
                                     "ConcurrentExecutions": world.account_limit, "UnreservedConcurrentExecutions": world.unreserved() });
            if world.withhold_unreserved
                && let Some(limit) = limit.as_object_mut()
            {
                limit.remove("UnreservedConcurrentExecutions");
            }
            json_response(
                200,
                json!({
                    "AccountLimit": limit,
                    "AccountUsage": { "TotalCodeSize": 0, "FunctionCount": world.functions.len() }
                }),
            )
        }
        "GetFunction" => {
            let mut body = json!({
                "Configuration": {
                    "FunctionName": function,
                    "FunctionArn": format!("arn:aws:lambda:us-east-1:123456789012:function:{function}"),
                    "Version": "$LATEST"
                }
            });
            if let Some(reserved) = world.function(&function).reserved {
                body["Concurrency"] = json!({ "ReservedConcurrentExecutions": reserved });
            }
            if world.function(&function).snap_start {
                let on = !qualifier.is_empty() && qualifier != "$LATEST";
                body["Configuration"]["SnapStart"] = json!({
                    "ApplyOn": "PublishedVersions",
                    "OptimizationStatus": if on { "On" } else { "Off" }
                });
            }
            json_response(200, body)
        }
        "ListAliases" => {
            let entry = world.function(&function);
            let aliases: Vec<Json> = entry
                .aliases
                .iter()
                .map(|(name, weighted)| {
                    let version = entry.alias_versions.get(name).map_or("3", String::as_str);
                    let mut alias = json!({
                        "AliasArn": format!("arn:aws:lambda:us-east-1:123456789012:function:{function}:{name}"),
                        "Name": name, "FunctionVersion": version, "Description": "", "RevisionId": "1"
                    });
                    if *weighted {
                        alias["RoutingConfig"] = json!({ "AdditionalVersionWeights": { "4": 0.1 } });
                    }
                    alias
                })
                .collect();
            json_response(200, json!({ "Aliases": aliases }))
        }
        "ListProvisionedConcurrencyConfigs" => {
            let configs: Vec<Json> = world
                .function(&function)
                .configs
                .iter()
                .map(|(qualifier, config)| {
                    let mut entry = config_json(config);
                    entry["FunctionArn"] = json!(format!(
                        "arn:aws:lambda:us-east-1:123456789012:function:{function}:{qualifier}"
                    ));
                    entry
                })
                .collect();
            json_response(200, json!({ "ProvisionedConcurrencyConfigs": configs }))
        }
        "GetProvisionedConcurrencyConfig" => {
            match world.function(&function).configs.get(&qualifier) {
                Some(config) => json_response(200, config_json(config)),
                None => lambda_error(
                    404,
                    "ProvisionedConcurrencyConfigNotFoundException",
                    "No Provisioned Concurrency Config found for this function",
                    json!({}),
                ),
            }
        }
        "DeleteProvisionedConcurrencyConfig" => {
            let entry = world.function(&function);
            match entry.configs.get(&qualifier) {
                Some(config) if config.status == "IN_PROGRESS" => lambda_error(
                    409,
                    "ResourceConflictException",
                    "An update is in progress for resource",
                    json!({}),
                ),
                _ => {
                    entry.configs.remove(&qualifier);
                    (StatusCode::NO_CONTENT, "").into_response()
                }
            }
        }
        "PutProvisionedConcurrencyConfig" => put(world, &function, &qualifier, value.unwrap_or(0)),
        _ => lambda_error(400, "UnknownOperationException", operation, json!({})),
    }
}

fn put(world: &mut World, function: &str, qualifier: &str, value: u32) -> Response {
    let invalid =
        |message: String| lambda_error(400, "InvalidParameterValueException", &message, json!({}));
    if qualifier == "$LATEST" || qualifier.is_empty() {
        return invalid(
            "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
                .into(),
        );
    }
    if value == 0 {
        return invalid("ProvisionedConcurrentExecutions must be at least 1".into());
    }
    if world.function(function).snap_start {
        return invalid(
            "Provisioned Concurrency cannot be configured for a function version with SnapStart enabled."
                .into(),
        );
    }
    let unreserved = world.unreserved();
    let entry = world.function(function);
    if entry.aliases.get(qualifier).copied().unwrap_or(false) {
        return invalid("Alias with weights can not be used with Provisioned Concurrency".into());
    }
    let current = entry.configs.get(qualifier).cloned();
    if current
        .as_ref()
        .is_some_and(|config| config.status == "IN_PROGRESS")
    {
        return lambda_error(
            409,
            "ResourceConflictException",
            "An update is in progress for resource",
            json!({}),
        );
    }
    let before = current.as_ref().map_or(0, |config| config.requested);
    let before_allocated = current
        .as_ref()
        .filter(|config| config.status == "READY")
        .map_or(0, |config| config.requested);
    match entry.reserved {
        Some(reserved) => {
            let others: u32 = entry
                .configs
                .iter()
                .filter(|(name, _)| name.as_str() != qualifier)
                .map(|(_, config)| config.requested)
                .sum();
            if others + value > reserved {
                return invalid(format!(
                    "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function ({reserved})"
                ));
            }
        }
        None => {
            let added = value.saturating_sub(before);
            if added > unreserved.saturating_sub(UNRESERVED_FLOOR) {
                return invalid(format!(
                    "Specified ConcurrentExecutions for function decrease account's UnreservedConcurrentExecution below its minimum value of [{UNRESERVED_FLOOR}]."
                ));
            }
        }
    }
    let config = Config {
        requested: value,
        status: "IN_PROGRESS",
        status_reason: None,
        since: Instant::now(),
        last_modified: chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
            .to_string(),
    };
    let mut body = config_json(&config);
    // Capacity already allocated keeps serving while the rest is allocated.
    body["AllocatedProvisionedConcurrentExecutions"] = json!(before_allocated.min(value));
    entry.configs.insert(qualifier.to_owned(), config);
    json_response(202, body)
}

fn text_of(value: &Cbor) -> Option<&str> {
    match value {
        Cbor::Text(text) => Some(text),
        _ => None,
    }
}

fn field<'a>(map: &'a Cbor, name: &str) -> Option<&'a Cbor> {
    match map {
        Cbor::Map(entries) => entries
            .iter()
            .find(|(key, _)| text_of(key) == Some(name))
            .map(|(_, value)| value),
        _ => None,
    }
}

fn seconds_of(value: &Cbor) -> Option<f64> {
    match value {
        Cbor::Tag(1, inner) => seconds_of(inner),
        Cbor::Integer(integer) => Some(i128::from(*integer) as f64),
        Cbor::Float(float) => Some(*float),
        _ => None,
    }
}

/// The sum of every function's `ConcurrentExecutions` a minute, as Lambda publishes
/// the account's.
fn account_concurrency(world: &World) -> Vec<(i64, f64)> {
    let mut minutes: BTreeMap<i64, f64> = BTreeMap::new();
    for ((name, dimensions), points) in &world.series {
        if name == "ConcurrentExecutions" && dimensions.iter().any(|(key, _)| key == "Resource") {
            for (time, value) in points {
                *minutes.entry(*time).or_default() += value;
            }
        }
    }
    minutes.into_iter().collect()
}

/// One datapoint a `period` from `start`: the peak (or the sum) of the minutes in it.
fn by_period(points: Vec<(i64, f64)>, start: i64, period: i64, summed: bool) -> Vec<(i64, f64)> {
    if period <= 60 {
        return points;
    }
    let mut periods: BTreeMap<i64, f64> = BTreeMap::new();
    for (time, value) in points {
        let at = start + (time - start).div_euclid(period) * period;
        let slot = periods
            .entry(at)
            .or_insert(if summed { 0.0 } else { f64::MIN });
        *slot = if summed {
            *slot + value
        } else {
            slot.max(value)
        };
    }
    periods.into_iter().collect()
}

fn get_metric_data(world: &World, body: &[u8], partial: bool) -> (Response, usize) {
    let Ok(request) = ciborium::from_reader::<Cbor, _>(body) else {
        return (
            fault_response(&Fault::InvalidParameter, true).expect("an error response"),
            0,
        );
    };
    let queries = match field(&request, "MetricDataQueries") {
        Some(Cbor::Array(queries)) => queries.clone(),
        _ => Vec::new(),
    };
    let start = field(&request, "StartTime")
        .and_then(seconds_of)
        .unwrap_or(0.0) as i64;
    let end = field(&request, "EndTime")
        .and_then(seconds_of)
        .unwrap_or(f64::MAX) as i64;
    let skip: usize = field(&request, "NextToken")
        .and_then(text_of)
        .and_then(|token| token.parse().ok())
        .unwrap_or(0);

    let mut results = Vec::new();
    let mut position = 0usize;
    let mut next_token = None;
    for query in &queries {
        let id = field(query, "Id")
            .and_then(text_of)
            .unwrap_or_default()
            .to_owned();
        let metric = field(query, "MetricStat").and_then(|stat| field(stat, "Metric"));
        let name = metric
            .and_then(|metric| field(metric, "MetricName"))
            .and_then(text_of)
            .unwrap_or_default()
            .to_owned();
        let mut dimensions: Vec<(String, String)> =
            match metric.and_then(|metric| field(metric, "Dimensions")) {
                Some(Cbor::Array(items)) => items
                    .iter()
                    .filter_map(|item| {
                        Some((
                            field(item, "Name").and_then(text_of)?.to_owned(),
                            field(item, "Value").and_then(text_of)?.to_owned(),
                        ))
                    })
                    .collect(),
                _ => Vec::new(),
            };
        dimensions.sort();
        let stat = field(query, "MetricStat");
        let period = stat
            .and_then(|stat| field(stat, "Period"))
            .and_then(seconds_of)
            .map_or(60, |period| period as i64)
            .max(60);
        let summed = stat.and_then(|stat| field(stat, "Stat")).and_then(text_of) == Some("Sum");
        let account = name == "ConcurrentExecutions" && dimensions.is_empty();
        let key = (name, dimensions);
        let points: Vec<(i64, f64)> = match world.series.get(&key) {
            Some(points) => points.clone(),
            // Lambda's account-level series: every function's, summed a minute.
            None if account => account_concurrency(world),
            None => Vec::new(),
        };
        let points: Vec<(i64, f64)> = points
            .into_iter()
            .filter(|(time, _)| *time >= start && *time < end)
            .collect();
        let points = by_period(points, start, period, summed);
        // A partial answer: the newest half is missing, and nothing says where it went.
        let points = if partial {
            points[..points.len() / 2].to_vec()
        } else {
            points
        };
        let mut timestamps = Vec::new();
        let mut values = Vec::new();
        for (time, value) in points {
            if position >= skip && position < skip + world.page_size {
                timestamps.push(Cbor::Tag(1, Box::new(Cbor::Float(time as f64))));
                values.push(Cbor::Float(value));
            } else if position >= skip + world.page_size && next_token.is_none() {
                next_token = Some(position.to_string());
            }
            position += 1;
        }
        results.push(Cbor::Map(vec![
            (Cbor::Text("Id".into()), Cbor::Text(id.clone())),
            (Cbor::Text("Label".into()), Cbor::Text(id)),
            (Cbor::Text("Timestamps".into()), Cbor::Array(timestamps)),
            (Cbor::Text("Values".into()), Cbor::Array(values)),
            (
                Cbor::Text("StatusCode".into()),
                Cbor::Text(
                    if partial || next_token.is_some() {
                        "PartialData"
                    } else {
                        "Complete"
                    }
                    .into(),
                ),
            ),
        ]));
    }
    let mut response = vec![
        (Cbor::Text("MetricDataResults".into()), Cbor::Array(results)),
        (Cbor::Text("Messages".into()), Cbor::Array(Vec::new())),
    ];
    if let Some(token) = next_token {
        response.push((Cbor::Text("NextToken".into()), Cbor::Text(token)));
    }
    (cbor_response(200, Cbor::Map(response)), queries.len())
}

/// The key of `function:qualifier`'s `ConcurrentExecutions` series.
pub fn concurrency_key(function: &str, qualifier: &str) -> SeriesKey {
    let dimensions = vec![
        ("FunctionName".to_owned(), function.to_owned()),
        ("Resource".to_owned(), format!("{function}:{qualifier}")),
    ];
    ("ConcurrentExecutions".to_owned(), dimensions)
}
