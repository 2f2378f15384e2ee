//! Who is calling the control-plane API and what they may do. Roles grant
//! permissions per realm (`*`: every realm) and optionally one environment.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use sluice_store::{Grant, Role, User};

use crate::error::ApiError;
use crate::secrets::hash_secret;
use crate::state::AppState;

/// What can be done to a kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Read anything in the realm (pipelines, deployments, executions, settings).
    Read,
    /// Save pipeline versions, archive and restore them.
    PipelinesWrite,
    /// Deploy, redeploy, roll back, promote, delete deployments.
    DeploymentsWrite,
    /// Set globals and accounts.
    SettingsWrite,
    /// Create consumers and keys.
    ConsumersWrite,
    /// Run deployments by hand and re-run executions.
    ExecutionsRun,
    /// Manage realms, environments, users and tokens.
    Admin,
}

impl Permission {
    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::PipelinesWrite => "pipelines:write",
            Permission::DeploymentsWrite => "deployments:write",
            Permission::SettingsWrite => "settings:write",
            Permission::ConsumersWrite => "consumers:write",
            Permission::ExecutionsRun => "executions:run",
            Permission::Admin => "admin",
        }
    }
}

/// Whether `role` carries `permission`.
pub fn role_allows(role: Role, permission: Permission) -> bool {
    use Permission as P;
    match role {
        Role::Admin => true,
        Role::Viewer => permission == P::Read,
        Role::Developer => matches!(
            permission,
            P::Read | P::PipelinesWrite | P::SettingsWrite | P::ExecutionsRun
        ),
        Role::Deployer => matches!(
            permission,
            P::Read | P::DeploymentsWrite | P::ConsumersWrite | P::ExecutionsRun
        ),
    }
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
}

impl Principal {
    fn grants_in<'a>(&'a self, realm: &'a str) -> impl Iterator<Item = &'a Grant> + 'a {
        self.user
            .grants
            .iter()
            .filter(move |g| g.realm == "*" || g.realm == realm)
    }

    /// Whether the caller has any grant in `realm` (else the realm is invisible).
    pub fn sees_realm(&self, realm: &str) -> bool {
        self.grants_in(realm).next().is_some()
    }

    /// Whether the caller administers the whole platform.
    pub fn is_platform_admin(&self) -> bool {
        self.user
            .grants
            .iter()
            .any(|g| g.realm == "*" && g.role == Role::Admin && g.environment.is_none())
    }

    /// Whether the caller may do `permission` in `realm`, in `environment`
    /// when the action is tied to one. A grant limited to one environment
    /// gives reading everywhere in the realm and writing in its environment.
    pub fn allows(&self, realm: &str, environment: Option<&str>, permission: Permission) -> bool {
        self.grants_in(realm).any(|g| {
            role_allows(g.role, permission)
                && match (&g.environment, environment) {
                    (None, _) => true,
                    (Some(_), _) if permission == Permission::Read => true,
                    (Some(own), Some(env)) => own == env,
                    (Some(_), None) => false,
                }
        })
    }

    /// Checks realm visibility (404 when invisible) and then the permission (403).
    pub fn require(
        &self,
        realm: &str,
        environment: Option<&str>,
        permission: Permission,
    ) -> Result<(), ApiError> {
        if !self.sees_realm(realm) {
            return Err(ApiError::not_found(format!("realm '{realm}' not found")));
        }
        if !self.allows(realm, environment, permission) {
            let place = environment.map_or_else(String::new, |e| format!(" in '{e}'"));
            return Err(ApiError::forbidden(format!(
                "'{}' may not {} in realm '{realm}'{place}",
                self.user.name,
                permission.name()
            )));
        }
        Ok(())
    }

    /// Checks platform administration (403).
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_platform_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "'{}' is not a platform administrator",
                self.user.name
            )))
        }
    }
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "missing Authorization header: send 'Bearer <token>'",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be 'Bearer <token>'")
            })?;
        match state.store.find_token(&hash_secret(token)).await? {
            Some((_, user)) => Ok(Principal { user }),
            None => Err(ApiError::unauthorized("the token is not valid")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(grants: Vec<Grant>) -> Principal {
        Principal {
            user: User {
                name: "u".into(),
                grants,
                created_at: 0,
            },
        }
    }

    #[test]
    fn roles_grant_what_their_names_say() {
        let viewer = principal(vec![Grant {
            realm: "acme".into(),
            role: Role::Viewer,
            environment: None,
        }]);
        assert!(viewer.allows("acme", None, Permission::Read));
        assert!(!viewer.allows("acme", Some("test"), Permission::DeploymentsWrite));
        assert!(!viewer.sees_realm("globex"));
        let deployer = principal(vec![Grant {
            realm: "acme".into(),
            role: Role::Deployer,
            environment: Some("test".into()),
        }]);
        assert!(deployer.allows("acme", Some("test"), Permission::DeploymentsWrite));
        assert!(!deployer.allows("acme", Some("prod"), Permission::DeploymentsWrite));
        assert!(deployer.allows("acme", Some("prod"), Permission::Read));
        assert!(!deployer.allows("acme", None, Permission::PipelinesWrite));
        let admin = principal(vec![Grant {
            realm: "*".into(),
            role: Role::Admin,
            environment: None,
        }]);
        assert!(admin.is_platform_admin());
        assert!(admin.allows("anything", Some("prod"), Permission::Admin));
    }
}
