//! `/api/v1/projects/{p}/dashboards[/{id}]`: list, create (also import: the exported JSON
//! posted back), read (also export), replace, delete. Anyone who may read the project may
//! look; writing takes the admin token or an admin's session.

use super::reply::{json, ApiError, Reply};
use super::route::{AdminToken, ReadAccess};
use crate::service::Dashboards;
use crate::web::dashboard::{self, Dashboard};
use crate::{auth, clock};
use hyper::StatusCode;
use serde_json::{json, Value};

fn project_exists(d: &Dashboards, project: &str) -> Result<(), ApiError> {
    match d.store.project(project)? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!("no project {project:?}"))),
    }
}

fn found(d: &Dashboards, project: &str, id: &str) -> Result<Dashboard, ApiError> {
    d.store
        .dashboard(project, id)?
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard {id:?} in project {project:?}")))
}

pub fn list(d: &Dashboards, access: &ReadAccess, project: &str) -> Result<Reply, ApiError> {
    access.check(project)?;
    project_exists(d, project)?;
    let all: Vec<Dashboard> = d.store.dashboards(project)?;
    let rows: Vec<Value> = all
        .iter()
        .map(|x| json!({"id": x.id, "name": x.name, "widgets": x.widgets.len(), "updatedAt": x.updated_at}))
        .collect();
    Ok(json(StatusCode::OK, &json!({ "dashboards": rows })))
}

pub fn get(
    d: &Dashboards,
    access: &ReadAccess,
    project: &str,
    id: &str,
) -> Result<Reply, ApiError> {
    access.check(project)?;
    Ok(json(StatusCode::OK, &found(d, project, id)?))
}

/// A new dashboard (an imported one gets a new id; its widgets keep theirs).
pub fn create(
    d: &Dashboards,
    _: AdminToken,
    project: &str,
    body: Value,
) -> Result<Reply, ApiError> {
    project_exists(d, project)?;
    let mut dash = dashboard::parse(&body, || auth::new_id("w_")).map_err(ApiError::BadRequest)?;
    let now = clock::now_ms();
    dash.id = auth::new_id("db_");
    dash.created_at = now;
    dash.updated_at = now;
    d.store.put_dashboard(project, &dash.id, &dash)?;
    Ok(json(StatusCode::CREATED, &dash))
}

pub fn replace(
    d: &Dashboards,
    _: AdminToken,
    project: &str,
    id: &str,
    body: Value,
) -> Result<Reply, ApiError> {
    let old = found(d, project, id)?;
    let mut dash = dashboard::parse(&body, || auth::new_id("w_")).map_err(ApiError::BadRequest)?;
    dash.id = old.id;
    dash.created_at = old.created_at;
    dash.updated_at = clock::now_ms();
    d.store.put_dashboard(project, id, &dash)?;
    Ok(json(StatusCode::OK, &dash))
}

pub fn delete(d: &Dashboards, _: AdminToken, project: &str, id: &str) -> Result<Reply, ApiError> {
    if !d.store.remove_dashboard(project, id)? {
        return Err(ApiError::NotFound(format!(
            "no dashboard {id:?} in project {project:?}"
        )));
    }
    Ok(json(StatusCode::OK, &json!({"deleted": id})))
}
