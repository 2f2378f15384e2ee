//! The `s3` backend: the S3 REST API (PutObject, GetObject, HeadObject,
//! ListObjectsV2, DeleteObject, CreateBucket) over the step's HTTP client,
//! each request signed with SigV4 by `aws-sigv4` (signing only: no SDK).
//! Keys and secrets come from an account, never from the step's fields.
//! Errors keep the HTTP status and S3's error code.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use quick_xml::escape::{escape, resolve_predefined_entity};
use quick_xml::events::Event;
use reqwest::Method;
use serde_json::{Value, json};
use sluice_engine::{Context, FlowError};
use sluice_expr::Template;

use super::{
    Job, Listing, ObjectInfo, Outcome, STEP, bad_input, not_found, rfc3339, storage_error,
};
use crate::input;

/// The region requests are signed for when neither the step nor the account names one.
const DEFAULT_REGION: &str = "us-east-1";

/// What SigV4 leaves unescaped: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// In a key, `/` separates names and stays.
const KEY_SET: &AsciiSet = &UNRESERVED.remove(b'/');

/// The compiled S3 side of a step: its connection pool and where its
/// settings come from.
pub(super) struct S3Backend {
    pub(super) client: reqwest::Client,
    pub(super) account: String,
    pub(super) endpoint: Option<Template>,
    pub(super) region: Option<Template>,
    pub(super) path_style: Option<bool>,
}

/// Where and as whom one execution's request goes.
pub(super) struct Target {
    /// `http` or `https`.
    scheme: String,
    /// `host[:port]`.
    authority: String,
    /// A path the endpoint has before buckets (usually empty), without a `/` at the end.
    base_path: String,
    region: String,
    path_style: bool,
    access_key_id: String,
    secret_access_key: String,
    session_token: Option<String>,
}

/// Checks an endpoint given as a literal (or rendered): an http(s) URL with a host.
pub(super) fn check_endpoint(text: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(text.trim())
        .map_err(|e| format!("`endpoint` '{text}' is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "`endpoint` '{text}' is not an http or https URL with a host"
        ));
    }
    if url.query().is_some() || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`endpoint` '{text}' has a query or credentials: give the account the keys instead"
        ));
    }
    Ok(url)
}

/// A boolean account field, as a boolean or as "true"/"false".
fn account_bool(account: &Value, field: &str) -> Option<bool> {
    match account.get(field)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(true),
            "false" | "no" | "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

impl S3Backend {
    /// The target of this execution: the step's fields, then the account's, then defaults.
    pub(super) fn target(&self, cx: &Context, message: &Value) -> Result<Target, FlowError> {
        let name = &self.account;
        let account = input::account(STEP, cx, name)?;
        let field = |f: &str| input::account_field(STEP, name, account, f).map(str::to_owned);
        let access_key_id = field("accessKeyId")?;
        let secret_access_key = field("secretAccessKey")?;
        let session_token = input::account_text(account, "sessionToken")
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
        let rendered = |t: &Option<Template>| -> Result<Option<String>, FlowError> {
            match t {
                Some(t) => {
                    Ok(Some(cx.render(t, message)?.trim().to_owned()).filter(|s| !s.is_empty()))
                }
                None => Ok(None),
            }
        };
        let from_account = |f: &str| {
            input::account_text(account, f)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let region = rendered(&self.region)?
            .or_else(|| from_account("region"))
            .unwrap_or_else(|| DEFAULT_REGION.to_owned());
        let endpoint = rendered(&self.endpoint)?.or_else(|| from_account("endpoint"));
        let path_style = self
            .path_style
            .or_else(|| account_bool(account, "pathStyle"))
            .unwrap_or(endpoint.is_some());
        let endpoint = endpoint.unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let url = check_endpoint(&endpoint).map_err(|why| bad_input(STEP, why))?;
        let authority = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => String::new(),
        };
        Ok(Target {
            scheme: url.scheme().to_owned(),
            authority,
            base_path: url.path().trim_end_matches('/').to_owned(),
            region,
            path_style,
            access_key_id,
            secret_access_key,
            session_token,
        })
    }

    /// Runs `job` on `bucket`.
    pub(super) async fn run(
        &self,
        target: &Target,
        bucket: &str,
        job: Job,
    ) -> Result<Outcome, FlowError> {
        match job {
            Job::Put {
                key,
                bytes,
                content_type,
            } => {
                let url = target.url(bucket, Some(&key), &[]);
                let size = bytes.len() as u64;
                let response = self
                    .send(target, Method::PUT, &url, Some(&content_type), bytes)
                    .await?;
                if !response.status().is_success() {
                    return Err(failure(response, bucket, Some(&key)).await);
                }
                Ok(Outcome::Stored(ObjectInfo {
                    etag: header(&response, "etag").map(|e| unquote(&e)),
                    key,
                    size,
                    content_type: Some(content_type),
                    last_modified: None,
                }))
            }
            Job::Get { key, max_size } => {
                let url = target.url(bucket, Some(&key), &[]);
                let mut response = self
                    .send(target, Method::GET, &url, None, Vec::new())
                    .await?;
                if !response.status().is_success() {
                    return Err(failure(response, bucket, Some(&key)).await);
                }
                let info = described(&response, &key);
                let too_big = |size: u64| {
                    storage_error(
                        413,
                        format!(
                            "object '{key}' is {size} bytes, more than maxSize ({})",
                            sluice_spec::ByteSize(max_size)
                        ),
                    )
                };
                if info.size > max_size {
                    return Err(too_big(info.size));
                }
                let mut bytes = Vec::new();
                while let Some(chunk) = response.chunk().await.map_err(|e| transport(&e))? {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() as u64 > max_size {
                        return Err(too_big(bytes.len() as u64));
                    }
                }
                let info = ObjectInfo {
                    size: bytes.len() as u64,
                    ..info
                };
                Ok(Outcome::Fetched(info, bytes))
            }
            Job::Head { key } => {
                let url = target.url(bucket, Some(&key), &[]);
                let response = self
                    .send(target, Method::HEAD, &url, None, Vec::new())
                    .await?;
                if response.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(Outcome::Missing(key));
                }
                if !response.status().is_success() {
                    return Err(failure(response, bucket, Some(&key)).await);
                }
                Ok(Outcome::Found(described(&response, &key)))
            }
            Job::List {
                prefix,
                delimiter,
                max_keys,
                token,
            } => {
                let max = max_keys.to_string();
                let mut query: Vec<(&str, &str)> = vec![("list-type", "2"), ("max-keys", &max)];
                if !prefix.is_empty() {
                    query.push(("prefix", &prefix));
                }
                if let Some(d) = &delimiter {
                    query.push(("delimiter", d));
                }
                if let Some(t) = &token {
                    query.push(("continuation-token", t));
                }
                let url = target.url(bucket, None, &query);
                let response = self
                    .send(target, Method::GET, &url, None, Vec::new())
                    .await?;
                if !response.status().is_success() {
                    return Err(failure(response, bucket, None).await);
                }
                let text = response.text().await.map_err(|e| transport(&e))?;
                parse_listing(&text).map(Outcome::Listed).map_err(|why| {
                    storage_error(
                        502,
                        format!("the list answer is not ListObjectsV2 XML: {why}"),
                    )
                })
            }
            Job::Delete { key } => {
                let url = target.url(bucket, Some(&key), &[]);
                let response = self
                    .send(target, Method::DELETE, &url, None, Vec::new())
                    .await?;
                if !response.status().is_success() {
                    return Err(failure(response, bucket, Some(&key)).await);
                }
                Ok(Outcome::Deleted(key))
            }
            Job::CreateBucket => {
                let url = target.url(bucket, None, &[]);
                // us-east-1 takes no location; every other region must be named.
                let body = if target.region == DEFAULT_REGION {
                    Vec::new()
                } else {
                    format!(
                        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                        escape(target.region.as_str())
                    )
                    .into_bytes()
                };
                let content_type = (!body.is_empty()).then_some("application/xml");
                let response = self
                    .send(target, Method::PUT, &url, content_type, body)
                    .await?;
                if response.status().is_success() {
                    return Ok(Outcome::BucketReady(bucket.to_owned()));
                }
                let error = failure(response, bucket, None).await;
                let owned = error
                    .details
                    .as_deref()
                    .and_then(|d| d.get("s3Code"))
                    .and_then(Value::as_str)
                    == Some("BucketAlreadyOwnedByYou");
                if owned {
                    Ok(Outcome::BucketReady(bucket.to_owned()))
                } else {
                    Err(error)
                }
            }
        }
    }

    /// Signs and sends one request.
    async fn send(
        &self,
        target: &Target,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<reqwest::Response, FlowError> {
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(t) = content_type {
            headers.push(("content-type", t));
        }
        let signed = signed_headers(
            target,
            method.as_str(),
            url,
            &headers,
            &body,
            SystemTime::now(),
        )?;
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| bad_input(STEP, format!("cannot make a URL for the request: {e}")))?;
        let mut request = self.client.request(method, parsed);
        for (name, value) in headers.iter().copied() {
            request = request.header(name, value);
        }
        for (name, value) in &signed {
            request = request.header(*name, value.as_str());
        }
        request.body(body).send().await.map_err(|e| transport(&e))
    }
}

impl Target {
    /// The URL of `key` in `bucket` (of the bucket itself without a key),
    /// every part escaped as SigV4 wants it. A bucket with a dot goes in the
    /// path whatever `pathStyle` says: as a host name it would not match
    /// the service's TLS certificate.
    fn url(&self, bucket: &str, key: Option<&str>, query: &[(&str, &str)]) -> String {
        let key = key
            .map(|k| format!("/{}", utf8_percent_encode(k, KEY_SET)))
            .unwrap_or_default();
        let mut url = if self.path_style || bucket.contains('.') {
            format!(
                "{}://{}{}/{bucket}{key}",
                self.scheme, self.authority, self.base_path
            )
        } else {
            let key = if key.is_empty() { "/" } else { key.as_str() };
            format!(
                "{}://{bucket}.{}{}{key}",
                self.scheme, self.authority, self.base_path
            )
        };
        for (i, (name, value)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&utf8_percent_encode(name, UNRESERVED).to_string());
            url.push('=');
            url.push_str(&utf8_percent_encode(value, UNRESERVED).to_string());
        }
        url
    }
}

/// The headers that sign a request (`authorization`, `x-amz-date`,
/// `x-amz-content-sha256`, and `x-amz-security-token` with a session token).
fn signed_headers(
    target: &Target,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, FlowError> {
    let failed =
        |e: &dyn std::fmt::Display| storage_error(500, format!("cannot sign the request: {e}"));
    let identity = Credentials::new(
        target.access_key_id.as_str(),
        target.secret_access_key.as_str(),
        target.session_token.clone(),
        None,
        "sluice-account",
    )
    .into();
    let mut settings = SigningSettings::default();
    // S3 wants the payload hash as a header, and the path as sent (escaped
    // once, never normalized).
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&target.region)
        .name("s3")
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| failed(&e))?
        .into();
    let request = SignableRequest::new(
        method,
        url,
        headers.iter().copied(),
        SignableBody::Bytes(body),
    )
    .map_err(|e| failed(&e))?;
    let (instructions, _signature) = sign(request, &params).map_err(|e| failed(&e))?.into_parts();
    let (signed, _query) = instructions.into_parts();
    Ok(signed
        .into_iter()
        .map(|h| (h.name(), h.value().to_owned()))
        .collect())
}

/// A transport error with its cause chain (the top line alone says little).
fn transport(e: &reqwest::Error) -> FlowError {
    let text = crate::http::describe(e);
    let status = if e.is_timeout() { 504 } else { 502 };
    storage_error(status, format!("the S3 request failed: {text}"))
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// An etag without the quotes S3 puts around it.
fn unquote(etag: &str) -> String {
    etag.trim().trim_matches('"').to_owned()
}

/// An object's description from the headers of a GET or HEAD.
fn described(response: &reqwest::Response, key: &str) -> ObjectInfo {
    ObjectInfo {
        key: key.to_owned(),
        size: header(response, "content-length")
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0),
        content_type: header(response, "content-type"),
        etag: header(response, "etag").map(|e| unquote(&e)),
        last_modified: header(response, "last-modified").map(|t| {
            chrono::DateTime::parse_from_rfc2822(t.trim())
                .map(|d| rfc3339(d.to_utc()))
                .unwrap_or(t)
        }),
    }
}

/// The error for a failed answer: a missing object is `not_found` (404);
/// anything else keeps the status, with S3's code, message and request id
/// in the message and in `details`.
async fn failure(response: reqwest::Response, bucket: &str, key: Option<&str>) -> FlowError {
    let status = response.status();
    let request_id = header(&response, "x-amz-request-id");
    let text = response.text().await.unwrap_or_default();
    let parsed = parse_error(&text);
    // HEAD answers have no body: the status says what happened.
    let code = parsed
        .code
        .clone()
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| {
            match status.as_u16() {
                301 => "PermanentRedirect",
                400 => "BadRequest",
                403 => "Forbidden",
                404 => "NotFound",
                405 => "MethodNotAllowed",
                409 => "Conflict",
                _ => "",
            }
            .to_owned()
        });
    if let Some(key) = key
        && status == reqwest::StatusCode::NOT_FOUND
        && matches!(code.as_str(), "NoSuchKey" | "NotFound")
    {
        return not_found(bucket, key).with_details(json!({
            "bucket": bucket,
            "key": key,
            "status": 404,
            "s3Code": code,
        }));
    }
    let about = match key {
        Some(k) => format!("object '{k}' in bucket '{bucket}'"),
        None => format!("bucket '{bucket}'"),
    };
    let mut message = format!("S3 answered {} {code} for {about}", status.as_u16());
    if let Some(m) = parsed.message.as_deref().filter(|m| !m.is_empty()) {
        message.push_str(": ");
        message.push_str(m);
    }
    storage_error(status.as_u16(), message).with_details(json!({
        "status": status.as_u16(),
        "s3Code": code,
        "s3Message": parsed.message,
        "requestId": parsed.request_id.or(request_id),
        "bucket": bucket,
        "key": key,
    }))
}

/// Calls `closed(path, text)` for every element as it closes, `path` being
/// the element names from the root (`["ListBucketResult", "Contents", "Key"]`)
/// and `text` its own text (entities resolved).
fn walk_xml(text: &str, mut closed: impl FnMut(&[&str], &str)) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut names: Vec<String> = Vec::new();
    let mut texts: Vec<String> = Vec::new();
    let local = |raw: &[u8]| String::from_utf8_lossy(raw).into_owned();
    loop {
        match reader.read_event().map_err(|e| e.to_string())? {
            Event::Start(tag) => {
                names.push(local(tag.local_name().as_ref()));
                texts.push(String::new());
            }
            Event::Empty(tag) => {
                names.push(local(tag.local_name().as_ref()));
                let path: Vec<&str> = names.iter().map(String::as_str).collect();
                closed(&path, "");
                names.pop();
            }
            Event::End(_) => {
                let own = texts.pop().unwrap_or_default();
                let path: Vec<&str> = names.iter().map(String::as_str).collect();
                closed(&path, &own);
                names.pop();
            }
            Event::Text(t) => {
                let content = t.xml10_content().map_err(|e| e.to_string())?;
                if let Some(last) = texts.last_mut() {
                    last.push_str(&content);
                }
            }
            Event::CData(c) => {
                let content = c.xml10_content().map_err(|e| e.to_string())?;
                if let Some(last) = texts.last_mut() {
                    last.push_str(&content);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c.to_string(),
                    None => {
                        let name = r.decode().map_err(|e| e.to_string())?;
                        resolve_predefined_entity(&name)
                            .ok_or_else(|| format!("unknown entity &{name};"))?
                            .to_owned()
                    }
                };
                if let Some(last) = texts.last_mut() {
                    last.push_str(&resolved);
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
    }
}

/// A ListObjectsV2 answer as one page.
fn parse_listing(text: &str) -> Result<Listing, String> {
    let mut listing = Listing::default();
    let mut current = ObjectInfo::default();
    let mut truncated = false;
    let mut next = None;
    let mut root = None;
    walk_xml(text, |path, text| match path {
        [_, "Contents", "Key"] => current.key = text.to_owned(),
        [_, "Contents", "Size"] => current.size = text.trim().parse().unwrap_or(0),
        [_, "Contents", "ETag"] => current.etag = Some(unquote(text)),
        [_, "Contents", "LastModified"] => {
            current.last_modified = Some(
                chrono::DateTime::parse_from_rfc3339(text.trim())
                    .map(|d| rfc3339(d.to_utc()))
                    .unwrap_or_else(|_| text.trim().to_owned()),
            );
        }
        [_, "Contents"] => listing.objects.push(std::mem::take(&mut current)),
        [_, "CommonPrefixes", "Prefix"] => listing.prefixes.push(text.to_owned()),
        [_, "IsTruncated"] => truncated = text.trim() == "true",
        [_, "NextContinuationToken"] => next = Some(text.to_owned()),
        [name] => root = Some((*name).to_owned()),
        _ => {}
    })?;
    if root.as_deref() != Some("ListBucketResult") {
        return Err(format!(
            "the root element is {}",
            root.map_or_else(|| "missing".to_owned(), |r| format!("<{r}>"))
        ));
    }
    listing.next_token = next.filter(|t| truncated && !t.is_empty());
    Ok(listing)
}

/// What an S3 error body says.
#[derive(Default)]
struct S3Error {
    code: Option<String>,
    message: Option<String>,
    request_id: Option<String>,
}

fn parse_error(text: &str) -> S3Error {
    let mut out = S3Error::default();
    let _ = walk_xml(text, |path, text| {
        let text = Some(text.trim().to_owned());
        match path {
            ["Error", "Code"] => out.code = text,
            ["Error", "Message"] => out.message = text,
            ["Error", "RequestId"] => out.request_id = text,
            _ => {}
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    /// The example keys and time of AWS's SigV4 documentation for S3.
    fn example() -> (Target, SystemTime) {
        let target = Target {
            scheme: "https".into(),
            authority: "s3.amazonaws.com".into(),
            base_path: String::new(),
            region: "us-east-1".into(),
            path_style: false,
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        // 2013-05-24T00:00:00Z
        (target, UNIX_EPOCH + Duration::from_secs(1_369_353_600))
    }

    fn authorization<'a>(signed: &'a [(&'static str, String)]) -> &'a str {
        signed
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.as_str())
            .unwrap()
    }

    #[test]
    fn signatures_match_the_aws_examples() {
        let (target, time) = example();
        // GET Object, with a Range header.
        let url = target.url("examplebucket", Some("test.txt"), &[]);
        assert_eq!(url, "https://examplebucket.s3.amazonaws.com/test.txt");
        let signed =
            signed_headers(&target, "GET", &url, &[("range", "bytes=0-9")], b"", time).unwrap();
        assert_eq!(
            authorization(&signed),
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        // PUT Object: a key with a character to escape, and a body.
        let url = target.url("examplebucket", Some("test$file.text"), &[]);
        assert_eq!(
            url,
            "https://examplebucket.s3.amazonaws.com/test%24file.text"
        );
        let headers = [
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ];
        let signed = signed_headers(
            &target,
            "PUT",
            &url,
            &headers,
            b"Welcome to Amazon S3.",
            time,
        )
        .unwrap();
        assert!(
            authorization(&signed).ends_with(
                "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            ),
            "{}",
            authorization(&signed)
        );
        // GET Bucket (list), with a query.
        let url = target.url("examplebucket", None, &[("max-keys", "2"), ("prefix", "J")]);
        assert_eq!(
            url,
            "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J"
        );
        let signed = signed_headers(&target, "GET", &url, &[], b"", time).unwrap();
        assert!(
            authorization(&signed).ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{}",
            authorization(&signed)
        );
    }

    #[test]
    fn urls_escape_keys_and_queries() {
        let (mut target, _) = example();
        target.path_style = true;
        target.scheme = "http".into();
        target.authority = "127.0.0.1:9000".into();
        assert_eq!(
            target.url("b", Some("a b/ü+&.json"), &[]),
            "http://127.0.0.1:9000/b/a%20b/%C3%BC%2B%26.json"
        );
        assert_eq!(
            target.url("b", None, &[("list-type", "2"), ("prefix", "a b/")]),
            "http://127.0.0.1:9000/b?list-type=2&prefix=a%20b%2F"
        );
        target.base_path = "/s3".into();
        assert_eq!(
            target.url("b", Some("k"), &[]),
            "http://127.0.0.1:9000/s3/b/k"
        );
        let (target, _) = example();
        assert_eq!(
            target.url("my.bucket", Some("k"), &[]),
            "https://s3.amazonaws.com/my.bucket/k"
        );
    }

    #[test]
    fn listings_and_errors_are_read() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>b</Name><Prefix>in/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <Contents><Key>in/a &amp; b.json</Key><LastModified>2026-03-01T10:30:00.000Z</LastModified>
    <ETag>&quot;9b2cf535f27731c974343645a3985328&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>
  <CommonPrefixes><Prefix>in/sub/</Prefix></CommonPrefixes>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#;
        let listing = parse_listing(xml).unwrap();
        assert_eq!(
            listing.objects,
            vec![ObjectInfo {
                key: "in/a & b.json".into(),
                size: 12,
                content_type: None,
                etag: Some("9b2cf535f27731c974343645a3985328".into()),
                last_modified: Some("2026-03-01T10:30:00Z".into()),
            }]
        );
        assert_eq!(listing.prefixes, vec!["in/sub/".to_owned()]);
        assert_eq!(
            listing.next_token.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
        assert!(parse_listing("<Error><Code>X</Code></Error>").is_err());

        let error = parse_error(
            "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>",
        );
        assert_eq!(error.code.as_deref(), Some("NoSuchBucket"));
        assert_eq!(
            error.message.as_deref(),
            Some("The specified bucket does not exist")
        );
        assert_eq!(error.request_id.as_deref(), Some("4442587FB7D0A2F9"));
    }
}
