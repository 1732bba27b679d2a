//! `POST /oauth2/token` (`docs/event-stream.md#token-endpoint`): the Application Key as a
//! bearer token, a form body with `grant_type=client_credentials`, and the five fields of a
//! token response. Token-endpoint faults (`status`, `expire_tokens`, `drop`, `reset`,
//! `stall`) are applied here.

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri, header};

use super::requests::{Auth, RequestRecord};
use super::scenario::{Action, Endpoint};
use super::server::{AbortConnection, ConnControl};
use super::state::Shared;
use super::stream::{finish, pause, scripted_status};
use super::tokens::bearer;

/// The handler.
pub async fn handle(
    State(shared): State<Arc<Shared>>,
    Extension(conn): Extension<Arc<ConnControl>>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let mut record = RequestRecord::new("token", uri.query(), &headers);
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
    let tenant = authorization
        .as_deref()
        .and_then(bearer)
        .and_then(|key| shared.tenant_by_key(key))
        .cloned();
    record.auth = match (&authorization, &tenant) {
        (None, _) => Auth::Missing,
        (Some(_), Some(_)) => Auth::Valid,
        (Some(_), None) => Auth::Invalid,
    };
    record.tenant = tenant.as_ref().map(|tenant| tenant.name.clone());

    let number = shared.count(Endpoint::Token, record.tenant.as_deref());
    let faults =
        shared
            .options
            .scenario
            .faults_for(Endpoint::Token, record.tenant.as_deref(), number);
    for fault in faults {
        record.faults.push(fault.action.name().to_owned());
        pause(&shared, fault.delay_ms).await;
        match fault.action {
            action @ Action::Status { .. } => {
                return finish(&shared, record, scripted_status(&action));
            }
            Action::ExpireTokens => shared.tokens.revoke_all(),
            Action::Drop | Action::Reset => {
                if matches!(fault.action, Action::Reset) {
                    conn.reset_on_close();
                }
                // Status 0 in the log: no response was sent.
                shared.requests.push(record);
                let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
                response.extensions_mut().insert(AbortConnection);
                return response;
            }
            Action::Stall { for_ms } => {
                let forever = Duration::from_secs(365 * 24 * 3600);
                let duration = for_ms.map_or(forever, Duration::from_millis);
                tokio::select! {
                    _ = shared.cancel.cancelled() => {}
                    _ = tokio::time::sleep(duration) => {}
                }
            }
            // Stream-only actions are refused when the scenario is parsed.
            _ => {}
        }
    }

    let Some(tenant) = tenant else {
        return finish(
            &shared,
            record,
            oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "unknown application key",
            ),
        );
    };
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value.split(';').next().is_some_and(|mime| {
                mime.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form {
        return finish(
            &shared,
            record,
            oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "expected an application/x-www-form-urlencoded body",
            ),
        );
    }
    let grant_type = url::form_urlencoded::parse(&body)
        .find(|(name, _)| name == "grant_type")
        .map(|(_, value)| value.into_owned());
    match grant_type.as_deref() {
        Some("client_credentials") => {}
        Some(_) => {
            return finish(
                &shared,
                record,
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "unsupported_grant_type",
                    "only client_credentials is supported",
                ),
            );
        }
        None => {
            return finish(
                &shared,
                record,
                oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "grant_type is missing",
                ),
            );
        }
    }
    let issued = shared.tokens.issue(&tenant.name);
    let body = serde_json::json!({
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_at": issued.expires_at,
        "expires_in": issued.expires_in,
        "scope": "",
    });
    finish(&shared, record, axum::Json(body).into_response())
}

/// An RFC 6749 error response.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({"error": error, "error_description": description});
    (status, axum::Json(body)).into_response()
}
