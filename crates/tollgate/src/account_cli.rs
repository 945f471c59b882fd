//! `tollgate login`, `logout` and `signup`: who the CLI acts as. A login trades the
//! password once for tokens of the CLI's built-in OAuth2 client and keeps only those
//! ([`crate::credentials`]).

use crate::cli::{LoginArgs, LogoutArgs, Output, SignupArgs};
use crate::credentials::{self, Credentials};
use crate::rest_client::{Client, emit, http_client, request_token, say};
use crate::{Failure, exit};
use serde_json::json;
use std::io::Read as _;
use tollgate_tokens::cli_client::CLI_CLIENT_ID;

/// Asks for a password on the terminal, without echo.
fn prompt(label: &str) -> Result<String, Failure> {
    rpassword::prompt_password(label).map_err(|e| {
        Failure::new(
            exit::CONFIG,
            format!("cannot prompt for a password ({e}): pass --password, or --password-stdin where offered"),
        )
    })
}

/// `tollgate login`: signs in and keeps the tokens for the server, which becomes the
/// default one.
pub async fn login(args: LoginArgs, output: Output) -> Result<(), Failure> {
    let server = credentials::server_key(&args.server);
    let password = match (args.password, args.password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| Failure::new(exit::OS, format!("cannot read the password from stdin: {e}")))?;
            s.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, false) => prompt(&format!("Password for {} at {server}: ", args.user))?,
    };
    if password.is_empty() {
        return Err(Failure::new(exit::CONFIG, "the password is empty"));
    }
    let login = request_token(
        &http_client()?,
        &server,
        &[
            ("grant_type", "password"),
            ("username", &args.user),
            ("password", &password),
            ("client_id", CLI_CLIENT_ID),
        ],
        &args.user,
    )
    .await?;
    let mut all = Credentials::load().unwrap_or_default();
    let expires_at = login.expires_at;
    all.servers.insert(server.clone(), login);
    all.current = Some(server.clone());
    all.save()?;
    let path = credentials::path()?;
    emit(
        output,
        &json!({ "server": server, "user": args.user, "expiresAt": expires_at, "credentials": path }),
        || {
            say(&format!(
                "Logged in to {server} as {}. The token is kept in {} (never the password).",
                args.user,
                path.display()
            ))
        },
    );
    Ok(())
}

/// `tollgate logout`: revokes the kept tokens (best effort) and forgets them.
pub async fn logout(args: LogoutArgs, output: Output) -> Result<(), Failure> {
    let mut all = Credentials::load()?;
    let server = args
        .server
        .as_deref()
        .map(credentials::server_key)
        .unwrap_or_else(|| all.default_server());
    let Some(login) = all.servers.remove(&server) else {
        return Err(Failure::new(
            exit::CONFIG,
            format!("not logged in to {server}; nothing to do"),
        ));
    };
    if all.current.as_deref() == Some(server.as_str()) {
        all.current = all.servers.keys().next().cloned();
    }
    all.save()?;
    // Revoke on the server too, so that a copy of the file is worth nothing; the local
    // copy is gone whatever the server says.
    let http = http_client()?;
    let mut revoked = true;
    for token in std::iter::once(&login.access_token).chain(login.refresh_token.as_ref()) {
        let ok = http
            .post(format!("{server}/oauth2/revoke"))
            .form(&[("token", token.as_str()), ("client_id", CLI_CLIENT_ID)])
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        revoked &= ok;
    }
    emit(
        output,
        &json!({ "server": server, "user": login.user, "revoked": revoked }),
        || {
            say(&format!("Logged out of {server} ({}).", login.user));
            if !revoked {
                eprintln!("tollgate: the server could not be told to revoke the token; it expires on its own.");
            }
        },
    );
    Ok(())
}

/// `tollgate signup`: self sign-up on the Developer Portal.
pub async fn signup(args: SignupArgs, output: Output) -> Result<(), Failure> {
    let client = Client::anonymous(args.server.as_deref(), crate::app_cli::DEVPORTAL)?;
    let password = match args.password {
        Some(p) => p,
        None => {
            let first = prompt(&format!("Password for {}: ", args.username))?;
            if prompt("Repeat it: ")? != first {
                return Err(Failure::new(exit::CONFIG, "the passwords differ; nothing was created"));
            }
            first
        }
    };
    let user = client
        .send(client.http.post(client.url("/signup")).json(&json!({
            "username": args.username,
            "password": password,
            "email": args.email,
        })))
        .await?;
    // The answer names the user as they sign in (`bob@acme.com` in a tenant).
    let name = user["username"].as_str().unwrap_or(&args.username);
    emit(output, &user, || {
        say(&format!(
            "Created user {name} ({}). Next: `tollgate login --user {name}`.",
            user["email"].as_str().unwrap_or(&args.email),
        ))
    });
    Ok(())
}
