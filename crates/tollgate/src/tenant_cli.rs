//! `tollgate tenant create|list|get|activate|deactivate`: tenants through the Admin REST
//! API (`/api/am/admin/v4/tenants`), as a super-tenant administrator.

use crate::cli::{ConnectionArgs, Output, TenantCommand};
use crate::rest_client::{Client, emit, say};
use crate::{Failure, exit};
use serde_json::{Value, json};

/// Where the Admin REST API lives.
const ADMIN: &str = "/api/am/admin/v4";

fn line(t: &Value) -> String {
    format!(
        "{:<32} {:<9} {}",
        t["domain"].as_str().unwrap_or(""),
        if t["active"].as_bool().unwrap_or(false) {
            "active"
        } else {
            "inactive"
        },
        t["name"].as_str().unwrap_or("")
    )
}

/// A tenant's domain, as a path segment: refused here when it could not be one, so that
/// no other path is reached.
fn segment(domain: &str) -> Result<&str, Failure> {
    if domain.is_empty()
        || !domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
    {
        return Err(Failure::new(
            exit::CONFIG,
            format!("`{domain}` is not a tenant domain (a DNS name such as acme.com)"),
        ));
    }
    Ok(domain)
}

async fn client(conn: &ConnectionArgs) -> Result<Client, Failure> {
    Client::connect(conn, ADMIN).await
}

/// Runs one `tollgate tenant` command.
pub async fn run(command: TenantCommand, output: Output) -> Result<(), Failure> {
    match command {
        TenantCommand::Create {
            conn,
            domain,
            admin_user,
            admin_password,
            email,
            name,
        } => {
            let password = match admin_password {
                Some(p) => p,
                None => rpassword::prompt_password(format!("Password for {admin_user}@{domain}: ")).map_err(|e| {
                    Failure::new(
                        exit::CONFIG,
                        format!("cannot prompt for a password ({e}): pass --admin-password"),
                    )
                })?,
            };
            let client = client(&conn).await?;
            let mut body = json!({
                "domain": domain,
                "adminUsername": admin_user,
                "adminPassword": password,
                "email": email,
            });
            if let Some(n) = name {
                body["name"] = json!(n);
            }
            let tenant = client
                .send(client.http.post(client.url("/tenants")).json(&body))
                .await?;
            emit(output, &tenant, || {
                say(&format!(
                    "Created tenant {}. Its administrator signs in as {admin_user}@{}.",
                    tenant["domain"].as_str().unwrap_or(""),
                    tenant["domain"].as_str().unwrap_or("")
                ));
                let shadowed: Vec<&str> = tenant["shadowedUsers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|u| u.as_str())
                    .collect();
                if !shadowed.is_empty() {
                    say(&format!(
                        "Warning: {} super-tenant user(s) named like the tenant now sign in to it and can no longer sign in as before: {}. \
                         Create them in the tenant, or delete them.",
                        shadowed.len(),
                        shadowed.join(", ")
                    ));
                }
            });
        }
        TenantCommand::List { conn } => {
            let client = client(&conn).await?;
            let list = client.send(client.http.get(client.url("/tenants?limit=1000"))).await?;
            emit(output, &list, || {
                for t in list["list"].as_array().into_iter().flatten() {
                    say(&line(t));
                }
            });
        }
        TenantCommand::Get { conn, domain } => {
            let client = client(&conn).await?;
            let path = format!("/tenants/{}", segment(&domain)?);
            let tenant = client.send(client.http.get(client.url(&path))).await?;
            emit(output, &tenant, || say(&line(&tenant)));
        }
        TenantCommand::Activate { conn, domain } => set_active(&conn, &domain, "activate", output).await?,
        TenantCommand::Deactivate { conn, domain } => set_active(&conn, &domain, "deactivate", output).await?,
    }
    Ok(())
}

async fn set_active(conn: &ConnectionArgs, domain: &str, action: &str, output: Output) -> Result<(), Failure> {
    let client = client(conn).await?;
    let path = format!("/tenants/{}/{action}", segment(domain)?);
    let tenant = client.send(client.http.post(client.url(&path))).await?;
    emit(output, &tenant, || {
        say(&format!("Tenant {domain} {action}d: {}", line(&tenant).trim_end()))
    });
    Ok(())
}
