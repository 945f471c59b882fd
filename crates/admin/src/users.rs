//! `GET/POST /users`, `GET/PATCH/DELETE /users/{username}`, `GET /roles`: administrators
//! manage the people who use the Publisher and Developer Portal. A user who is disabled,
//! deleted or loses a role loses every token they hold, at introspection and at every
//! gateway (decision 012).

use crate::AdminState;
use crate::types::{CreateUser, RoleInfo, RoleList, UpdateUser, UserInfo, UserList};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use tollgate_http::auth::AdminRole;
use tollgate_http::{ApiError, ApiJson, ApiQuery, Authenticated, Pagination};
use tollgate_model::{Error, FieldError, NewUser, Role, User};
use tollgate_store::{applications, users};

pub(crate) fn routes() -> Router<AdminState> {
    Router::new()
        .route("/users", get(list_users).post(create_user))
        .route(
            "/users/{username}",
            get(get_user).patch(update_user).delete(delete_user),
        )
        .route("/roles", get(list_roles))
}

/// The query of `GET /users`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UsersQuery {
    offset: Option<i64>,
    limit: Option<i64>,
    /// A directory to list instead of the built-in store: `PRIMARY` or a store's domain.
    user_store: Option<String>,
}

#[utoipa::path(get, path = "/users", operation_id = "get_users", tag = "Users", summary = "List users: the built-in store's, or a directory's (userStore)", params(("offset" = Option<i64>, Query, description = "Items to skip"), ("limit" = Option<i64>, Query, description = "Items to return (1-1000)"), ("userStore" = Option<String>, Query, description = "List this directory's users instead: PRIMARY (the configured primary directory) or a store's domain (CORP)")), responses((status = 200, description = "A page of users", body = UserList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list_users(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    ApiQuery(query): ApiQuery<UsersQuery>,
) -> Result<axum::Json<UserList>, ApiError> {
    let page = Pagination::from_query(query.offset, query.limit).validate()?;
    let tenant = auth.principal().tenant_id;
    let (list, total) = match query.user_store.as_deref().filter(|s| !s.is_empty()) {
        Some(store) => {
            let (list, total) = state
                .authenticator
                .directory_users(tenant, store, page.offset as usize, page.limit as usize)
                .await?
                .ok_or_else(|| Error::field("userStore", format!("this tenant has no user store `{store}`")))?;
            (list, total as i64)
        }
        None => users::list(&state.shared, tenant, page.offset, page.limit).await?,
    };
    let list: Vec<UserInfo> = list.into_iter().map(UserInfo::from).collect();
    Ok(axum::Json(UserList {
        count: list.len(),
        list,
        pagination: page.info(total),
    }))
}

#[utoipa::path(post, path = "/users", operation_id = "post_users", tag = "Users", summary = "Create a user", request_body = CreateUser, responses((status = 201, description = "The user (never its password)", body = UserInfo), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn create_user(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    ApiJson(body): ApiJson<CreateUser>,
) -> Result<Response, ApiError> {
    let mut role_errors = Vec::new();
    let mut roles = Vec::new();
    for (i, name) in body.roles.iter().enumerate() {
        match name.parse::<Role>() {
            Ok(r) => roles.push(r),
            Err(e) => role_errors.push(FieldError::new(format!("roles[{i}]"), e.to_string())),
        }
    }
    let new = NewUser {
        tenant_id: auth.principal().tenant_id,
        username: body.username,
        password: body.password,
        email: body.email.filter(|e| !e.is_empty()),
        roles,
    };
    // A name of a directory (`CORP/bob`, or any name when the primary store is one) is
    // added there, or refused as the directory's settings say.
    let in_directory = if role_errors.is_empty() {
        state.authenticator.add_directory_user(&new).await?
    } else {
        None
    };
    let user = match in_directory {
        Some(user) => user,
        None => {
            let mut fields = match new.validate() {
                Err(Error::Validation(fields)) => fields,
                _ => Vec::new(),
            };
            fields.extend(role_errors);
            Error::check_fields(fields)?;
            users::create(&state.shared, new).await?
        }
    };
    tracing::info!(user = %user.username, by = %auth.principal().username, "User created.");
    let location = format!("{}/users/{}", crate::BASE_PATH, user.username.replace('/', "%2F"));
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        axum::Json(UserInfo::from(user)),
    )
        .into_response())
}

#[utoipa::path(get, path = "/users/{username}", operation_id = "get_user", tag = "Users", summary = "Get a user", params(("username" = String, Path, description = "User name")), responses((status = 200, description = "The user", body = UserInfo), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn get_user(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(username): Path<String>,
) -> Result<axum::Json<UserInfo>, ApiError> {
    // A directory's user (`CORP/alice`, or a name only the primary directory has) too.
    let user = state
        .authenticator
        .find_user(auth.principal().tenant_id, &username)
        .await?
        .ok_or(Error::NotFound {
            resource: "user",
            id: username,
        })?;
    Ok(axum::Json(UserInfo::from(user)))
}

/// `PATCH /users/{username}`: replaces the user's roles and/or enables or disables them.
/// The last enabled administrator cannot be disabled or lose the admin role.
#[utoipa::path(patch, path = "/users/{username}", operation_id = "patch_user", tag = "Users", summary = "Change a user's roles or enable/disable them", params(("username" = String, Path, description = "User name")), request_body = UpdateUser, responses((status = 200, description = "The user", body = UserInfo), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn update_user(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(username): Path<String>,
    ApiJson(body): ApiJson<UpdateUser>,
) -> Result<axum::Json<UserInfo>, ApiError> {
    let tenant = auth.principal().tenant_id;
    let user = users::find_by_username(&state.shared, tenant, &username)
        .await?
        .ok_or(Error::NotFound {
            resource: "user",
            id: username.clone(),
        })?;
    let roles = match &body.roles {
        None => None,
        Some(names) => {
            let mut errors = Vec::new();
            let mut roles = Vec::new();
            for (i, name) in names.iter().enumerate() {
                match name.parse::<Role>() {
                    Ok(r) => roles.push(r),
                    Err(e) => errors.push(FieldError::new(format!("roles[{i}]"), e.to_string())),
                }
            }
            Error::check_fields(errors)?;
            roles.sort();
            roles.dedup();
            Some(roles)
        }
    };
    if body.roles.is_none() && body.enabled.is_none() {
        return Err(Error::field("body", "name `roles`, `enabled` or both").into());
    }
    // Disabled, or a role taken away: the scopes of what they hold may rest on it.
    let loses_access = body.enabled == Some(false)
        || roles
            .as_ref()
            .is_some_and(|new| user.roles.iter().any(|r| !new.contains(r)));
    users::update_access(&state.shared, &user, roles.as_deref(), body.enabled).await?;
    state.authenticator.forget_all();
    if loses_access {
        revoke_held(&state, &user).await?;
    }
    tracing::info!(user = %user.username, by = %auth.principal().username, "User updated.");
    let updated = users::find_by_username(&state.shared, tenant, &username)
        .await?
        .ok_or(Error::NotFound {
            resource: "user",
            id: username,
        })?;
    Ok(axum::Json(UserInfo::from(updated)))
}

/// `DELETE /users/{username}`: removes a user and revokes every token they hold. The last
/// enabled administrator cannot be deleted, nor can a user who still owns applications:
/// the applications would pass to whoever next signs up with the name (disable the user
/// instead, or have them delete their applications first).
#[utoipa::path(delete, path = "/users/{username}", operation_id = "delete_user", tag = "Users", summary = "Delete a user and revoke their tokens", params(("username" = String, Path, description = "User name")), responses((status = 200, description = "Deleted"), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn delete_user(
    auth: Authenticated<AdminRole>,
    State(state): State<AdminState>,
    Path(username): Path<String>,
) -> Result<Response, ApiError> {
    let tenant = auth.principal().tenant_id;
    let not_found = || Error::NotFound {
        resource: "user",
        id: username.clone(),
    };
    let user = users::find_by_username(&state.shared, tenant, &username)
        .await?
        .ok_or_else(not_found)?;
    let (_, owned) = applications::list_by_owner(&state.am, tenant, &user.username, None, 0, 1).await?;
    if owned > 0 {
        return Err(Error::Conflict(format!(
            "`{}` owns {owned} application(s), which would pass to whoever next signs up as `{}`; \
             disable the user instead, or have them delete their applications first",
            user.username, user.username
        ))
        .into());
    }
    if !users::delete(&state.shared, &user).await? {
        return Err(not_found().into());
    }
    state.authenticator.forget_all();
    revoke_held(&state, &user).await?;
    tracing::info!(user = %user.username, by = %auth.principal().username, "User deleted.");
    Ok(StatusCode::OK.into_response())
}

/// Revokes every token `user` holds (their refresh and opaque tokens at once; every JWT
/// and API key whose subject they are through a `user` revocation the gateways receive).
/// Runs after the user change has committed: what was issued until then is covered, and
/// every grant from then on sees the change.
async fn revoke_held(state: &AdminState, user: &User) -> Result<(), ApiError> {
    let mut tx = state.am.begin().await?;
    tollgate_tokens::revoke_user_tokens(&mut tx, user.tenant_id, &user.username).await?;
    tx.commit().await?;
    tracing::info!(user = %user.username, "Every token of the user is revoked.");
    Ok(())
}

#[utoipa::path(get, path = "/roles", operation_id = "get_roles", tag = "Users", summary = "The built-in roles", responses((status = 200, description = "The roles", body = RoleList), tollgate_http::openapi_doc::CommonErrors))]
pub(crate) async fn list_roles(_auth: Authenticated<AdminRole>) -> axum::Json<RoleList> {
    let list: Vec<RoleInfo> = Role::ALL
        .iter()
        .map(|r| RoleInfo {
            name: r.as_str().to_string(),
            description: r.description().to_string(),
        })
        .collect();
    axum::Json(RoleList {
        count: list.len(),
        list,
    })
}
