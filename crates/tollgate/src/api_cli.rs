//! `tollgate api …`: manage APIs on a running control plane over its REST API, as a
//! publisher would script it. Each command prints one readable result, or one error line
//! with the server's description.

use crate::cli::{ApiCommand, Output};
use crate::rest_client::{Client, emit, say, step};
use crate::{Failure, exit};
use serde_json::{Value, json};
use std::path::Path;

const PUBLISHER: &str = "/api/am/publisher/v4";

/// Runs one `tollgate api` command.
pub async fn run(command: ApiCommand, output: Output) -> Result<(), Failure> {
    match command {
        ApiCommand::List { conn, query } => {
            let client = Client::connect(&conn, PUBLISHER).await?;
            let mut req = client.http.get(client.url("/apis")).query(&[("limit", "1000")]);
            if let Some(q) = &query {
                req = req.query(&[("query", q)]);
            }
            let body = client.send(req).await?;
            emit(output, &body, || {
                let rows: Vec<[String; 5]> = body["list"]
                    .as_array()
                    .map(|l| {
                        l.iter()
                            .map(|a| {
                                ["id", "name", "version", "context", "lifeCycleStatus"]
                                    .map(|k| a[k].as_str().unwrap_or("").to_string())
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                print_table(&["ID", "NAME", "VERSION", "CONTEXT", "STATUS"], &rows);
            });
            Ok(())
        }
        ApiCommand::Import {
            conn,
            file,
            context,
            name,
            version,
            policies,
            endpoint,
            mock,
            security,
            publish,
            deploy: environments,
        } => {
            let client = Client::connect(&conn, PUBLISHER).await?;
            let bytes = std::fs::read(&file)
                .map_err(|e| Failure::new(exit::CONFIG, format!("cannot read {}: {e}", file.display())))?;
            let mut props = json!({ "context": context });
            if let Some(n) = name {
                props["name"] = json!(n);
            }
            if let Some(v) = version {
                props["version"] = json!(v);
            }
            props["policies"] = json!(
                policies
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            );
            if let Some(url) = endpoint {
                props["endpointConfig"] = json!({ "endpoint_type": "http", "production_endpoints": { "url": url } });
            }
            if mock {
                props["endpointImplementationType"] = json!("MOCKED_OAS");
            }
            if !security.is_empty() {
                props["securityScheme"] = json!(security);
            }
            let form = reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(bytes).file_name(file_name(&file)),
                )
                .text("additionalProperties", props.to_string());
            let mut api = client
                .send(client.http.post(client.url("/apis/import-openapi")).multipart(form))
                .await?;
            let id = api["id"].as_str().unwrap_or("").to_string();
            step(
                output,
                &format!(
                    "Created API {} {} ({}) with {} operations at {}{}.",
                    api["name"].as_str().unwrap_or(""),
                    api["version"].as_str().unwrap_or(""),
                    id,
                    api["operations"].as_array().map_or(0, Vec::len),
                    api["context"].as_str().unwrap_or(""),
                    if mock {
                        ", answered from its examples (mock)"
                    } else {
                        ""
                    }
                ),
            );
            if publish {
                api = change_lifecycle(&client, &id, "Publish").await?;
                step(output, &format!("Published API {id}."));
            }
            if !environments.is_empty() {
                deploy(&client, &id, &environments, None, None, output).await?;
            }
            if publish || !environments.is_empty() {
                api = client.send(client.http.get(client.url(&format!("/apis/{id}")))).await?;
            }
            emit(output, &api, || {
                if environments.is_empty() {
                    say(&format!(
                        "Next: `tollgate api deploy {id} --env Default` to serve it on the gateway."
                    ));
                }
            });
            Ok(())
        }
        ApiCommand::Lifecycle { conn, api_id, action } => {
            let client = Client::connect(&conn, PUBLISHER).await?;
            let body = change_lifecycle(&client, &api_id, &action).await?;
            emit(output, &body, || {
                say(&format!(
                    "API {api_id} is now {}.",
                    body["lifecycleState"]["state"].as_str().unwrap_or("in a new state")
                ))
            });
            Ok(())
        }
        ApiCommand::Deploy {
            conn,
            api_id,
            environments,
            revision,
            description,
        } => {
            let client = Client::connect(&conn, PUBLISHER).await?;
            let deployed = deploy(&client, &api_id, &environments, revision, description, output).await?;
            emit(output, &deployed, || {});
            Ok(())
        }
    }
}

/// `POST /apis/change-lifecycle`: the lifecycle answer.
async fn change_lifecycle(client: &Client, api_id: &str, action: &str) -> Result<Value, Failure> {
    client
        .send(
            client
                .http
                .post(client.url("/apis/change-lifecycle"))
                .query(&[("apiId", api_id), ("action", action)]),
        )
        .await
}

/// Deploys `revision` (or a new one) of the API to `environments`, all or nothing: a
/// revision made for a refused deploy is removed again. The deploy answer.
async fn deploy(
    client: &Client,
    api_id: &str,
    environments: &[String],
    revision: Option<String>,
    description: Option<String>,
    output: Output,
) -> Result<Value, Failure> {
    let created = revision.is_none();
    let revision_id = match revision {
        Some(r) => r,
        None => {
            let mut body = json!({});
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            let rev = client
                .send(
                    client
                        .http
                        .post(client.url(&format!("/apis/{api_id}/revisions")))
                        .json(&body),
                )
                .await?;
            step(
                output,
                &format!(
                    "Created {} ({}).",
                    rev["displayName"].as_str().unwrap_or("a revision"),
                    rev["id"].as_str().unwrap_or("")
                ),
            );
            rev["id"].as_str().unwrap_or("").to_string()
        }
    };
    let body: Vec<Value> = environments
        .iter()
        .map(|e| json!({ "name": e, "displayOnDevportal": true }))
        .collect();
    let deployed = client
        .send(
            client
                .http
                .post(client.url(&format!("/apis/{api_id}/deploy-revision")))
                .query(&[("revisionId", &revision_id)])
                .json(&body),
        )
        .await;
    match deployed {
        Ok(answer) => {
            step(
                output,
                &format!(
                    "Deployed revision {revision_id} of API {api_id} to {}.",
                    environments.join(", ")
                ),
            );
            Ok(answer)
        }
        Err(refused) if created => {
            // All or nothing: the revision made for this deploy goes again.
            let path = format!("/apis/{api_id}/revisions/{revision_id}");
            match client.send(client.http.delete(client.url(&path))).await {
                Ok(_) => {
                    step(
                        output,
                        &format!("Removed revision {revision_id} again: nothing was deployed."),
                    );
                    Err(refused)
                }
                Err(e) => Err(Failure::new(
                    refused.code,
                    format!(
                        "{}; the revision {revision_id} made for it is left (removing it failed: {})",
                        refused.message, e.message
                    ),
                )),
            }
        }
        Err(refused) => Err(refused),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("definition")
        .to_string()
}

fn print_table(headers: &[&str; 5], rows: &[[String; 5]]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    say(&line(headers.to_vec()));
    for row in rows {
        say(&line(row.iter().map(String::as_str).collect()));
    }
    if rows.is_empty() {
        say("(no APIs)");
    }
}
