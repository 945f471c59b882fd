//! `tollgate app …` and `tollgate token`: what an API consumer scripts against the
//! Developer Portal REST API (create an application, generate its keys, get a token).

use crate::cli::{AppCommand, ConnectionArgs, Output, SubscribeArgs, TokenArgs};
use crate::rest_client::{Client, emit, say};
use crate::{Failure, exit};
use serde_json::{Value, json};

/// The Developer Portal REST API's base path.
pub(crate) const DEVPORTAL: &str = "/api/am/devportal/v3";

/// The id of the caller's application named or identified by `app`.
async fn resolve_app(client: &Client, app: &str) -> Result<String, Failure> {
    let body = client
        .send(client.http.get(client.url("/applications")).query(&[("limit", "1000")]))
        .await?;
    let list = body["list"].as_array().cloned().unwrap_or_default();
    list.iter()
        .find(|a| a["applicationId"].as_str() == Some(app))
        .or_else(|| list.iter().find(|a| a["name"].as_str() == Some(app)))
        .and_then(|a| a["applicationId"].as_str().map(String::from))
        .ok_or_else(|| {
            Failure::new(
                exit::OTHER,
                format!("you have no application with the id or name `{app}`; see `tollgate app create`"),
            )
        })
}

async fn client(conn: &ConnectionArgs) -> Result<Client, Failure> {
    Client::connect(conn, DEVPORTAL).await
}

/// The id of the API named or identified by `api` (`id`, `Name` or `Name:version`) among
/// those the caller sees on the Developer Portal.
async fn resolve_api(client: &Client, api: &str) -> Result<Value, Failure> {
    let body = client
        .send(client.http.get(client.url("/apis")).query(&[("limit", "1000")]))
        .await?;
    let list = body["list"].as_array().cloned().unwrap_or_default();
    if let Some(found) = list.iter().find(|a| a["id"].as_str() == Some(api)) {
        return Ok(found.clone());
    }
    let (name, version) = match api.rsplit_once(':') {
        Some((n, v)) => (n, Some(v)),
        None => (api, None),
    };
    let named: Vec<&Value> = list
        .iter()
        .filter(|a| a["name"].as_str() == Some(name))
        .filter(|a| version.is_none_or(|v| a["version"].as_str() == Some(v)))
        .collect();
    match named.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(Failure::new(
            exit::OTHER,
            format!(
                "no published API with the id or name `{api}` on the Developer Portal; `tollgate api list` shows the APIs (a publisher must publish and deploy one first)"
            ),
        )),
        several => Err(Failure::new(
            exit::OTHER,
            format!(
                "`{name}` has versions {}; name one as `{name}:VERSION`",
                several
                    .iter()
                    .map(|a| a["version"].as_str().unwrap_or("?"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

/// `tollgate subscribe API --app APP --plan PLAN`.
pub async fn subscribe(args: SubscribeArgs, output: Output) -> Result<(), Failure> {
    let client = client(&args.conn).await?;
    let api = resolve_api(&client, &args.api).await?;
    let app = resolve_app(&client, &args.app).await?;
    let api_id = api["id"].as_str().unwrap_or("");
    let subscription = client
        .send(client.http.post(client.url("/subscriptions")).json(&json!({
            "applicationId": app,
            "apiId": api_id,
            "throttlingPolicy": args.plan,
        })))
        .await?;
    emit(output, &subscription, || {
        say(&format!(
            "Subscribed application {} to {} {} with plan {} ({}, {}).",
            args.app,
            api["name"].as_str().unwrap_or(""),
            api["version"].as_str().unwrap_or(""),
            args.plan,
            subscription["subscriptionId"].as_str().unwrap_or(""),
            subscription["status"].as_str().unwrap_or("")
        ));
        say(&format!(
            "Next: `tollgate app keys {}` for its consumer key and secret, then `tollgate token {}`.",
            args.app, args.app
        ));
    });
    Ok(())
}

/// Runs one `tollgate app` command.
pub async fn run(command: AppCommand, output: Output) -> Result<(), Failure> {
    match command {
        AppCommand::Create {
            conn,
            name,
            policy,
            token_type,
            description,
        } => {
            let client = client(&conn).await?;
            let mut body = json!({
                "name": name,
                "throttlingPolicy": policy,
                "tokenType": token_type,
            });
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let app = client
                .send(client.http.post(client.url("/applications")).json(&body))
                .await?;
            emit(output, &app, || {
                say(&format!(
                    "Created application {} ({}) with policy {}.",
                    app["name"].as_str().unwrap_or(""),
                    app["applicationId"].as_str().unwrap_or(""),
                    app["throttlingPolicy"].as_str().unwrap_or("")
                ))
            });
            Ok(())
        }
        AppCommand::Keys {
            conn,
            app,
            key_type,
            grant_types,
            callback_url,
        } => {
            let client = client(&conn).await?;
            let id = resolve_app(&client, &app).await?;
            let grants: Vec<&str> = grant_types
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .collect();
            let keys = client
                .send(
                    client
                        .http
                        .post(client.url(&format!("/applications/{id}/generate-keys")))
                        .json(&json!({
                            "keyType": key_type,
                            "grantTypesToBeSupported": grants,
                            "callbackUrl": callback_url,
                        })),
                )
                .await?;
            emit(output, &keys, || {
                say(&format!(
                    "consumerKey:    {}",
                    keys["consumerKey"].as_str().unwrap_or("")
                ));
                say(&format!(
                    "consumerSecret: {}",
                    keys["consumerSecret"].as_str().unwrap_or("")
                ));
            });
            eprintln!("tollgate: keep the consumer secret now; it is stored only as a hash and cannot be shown again.");
            Ok(())
        }
    }
}

/// `tollgate token APP --consumer-secret S`: prints only the access token, so that
/// `TOKEN=$(tollgate token …)` works.
pub async fn token(args: TokenArgs, output: Output) -> Result<(), Failure> {
    let client = client(&args.conn).await?;
    let id = resolve_app(&client, &args.app).await?;
    let keys = client
        .send(client.http.get(client.url(&format!("/applications/{id}/oauth-keys"))))
        .await?;
    let mapping = keys["list"]
        .as_array()
        .and_then(|l| {
            l.iter().find(|k| {
                k["keyType"].as_str() == Some(args.key_type.to_uppercase().as_str()) && k["mode"] == "CREATED"
            })
        })
        .and_then(|k| k["keyMappingId"].as_str().map(String::from))
        .ok_or_else(|| {
            Failure::new(
                exit::OTHER,
                format!(
                    "application `{}` has no {} keys; run `tollgate app keys {}` first",
                    args.app, args.key_type, args.app
                ),
            )
        })?;
    let scopes: Vec<&str> = args
        .scope
        .as_deref()
        .unwrap_or("")
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .collect();
    let mut body =
        json!({ "consumerSecret": args.consumer_secret, "scopes": scopes, "grantType": "CLIENT_CREDENTIALS" });
    if let Some(v) = args.validity {
        body["validityPeriod"] = Value::from(v);
    }
    let token = client
        .send(
            client
                .http
                .post(client.url(&format!("/applications/{id}/oauth-keys/{mapping}/generate-token")))
                .json(&body),
        )
        .await?;
    emit(output, &token, || say(token["accessToken"].as_str().unwrap_or("")));
    Ok(())
}
