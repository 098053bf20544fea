//! SCRAM-SHA-256 password authentication against the users in the controller's metadata.
//!
//! An unknown user is answered with a random salt and password, so the exchange fails the same
//! way as a wrong password (SQLSTATE 28P01) and does not reveal which users exist.

use std::sync::Arc;

use async_trait::async_trait;
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::PgWireResult;

use crate::controller::client::ControllerClient;
use crate::query::users::SCRAM_ITERATIONS;

/// Looks passwords up in the controller.
pub struct ControllerAuth {
    controller: Arc<dyn ControllerClient>,
}

impl std::fmt::Debug for ControllerAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControllerAuth")
    }
}

impl ControllerAuth {
    pub fn new(controller: Arc<dyn ControllerClient>) -> Self {
        ControllerAuth { controller }
    }
}

#[async_trait]
impl AuthSource for ControllerAuth {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        let metadata = self.controller.metadata();
        match login.user().and_then(|u| metadata.users.get(u)) {
            // The SCRAM handler uses one iteration count for everyone; users are created with it.
            Some(u) if u.iterations == SCRAM_ITERATIONS => Ok(Password::new(
                Some(u.salt.clone()),
                u.salted_password.clone(),
            )),
            _ => {
                let salt: [u8; 16] = rand::random();
                let junk: [u8; 32] = rand::random();
                Ok(Password::new(Some(salt.to_vec()), junk.to_vec()))
            }
        }
    }
}
