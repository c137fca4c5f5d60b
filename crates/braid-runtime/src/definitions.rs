//! Workflow versions: compiled and checked against their project, and
//! cached once loaded (a saved version never changes).

use crate::error::Error;
use braid_core::definition::Bundle;
use braid_core::graph::{self, DefinitionError, Env, Graph};
use braid_store::{Store, StoredDef};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Stored versions and their compiled graphs, by version (row) id.
pub(crate) struct Definitions {
    store: Arc<dyn Store>,
    graphs: Mutex<HashMap<String, Arc<Graph>>>,
    defs: Mutex<HashMap<String, Arc<StoredDef>>>,
}

impl Definitions {
    pub(crate) fn new(store: Arc<dyn Store>) -> Definitions {
        Definitions {
            store,
            graphs: Mutex::new(HashMap::new()),
            defs: Mutex::new(HashMap::new()),
        }
    }

    /// Every save-time check: compilation against the project, and the
    /// model profiles' scripts and parameters.
    pub(crate) async fn compile_checked(
        &self,
        project_id: &str,
        bundle: &Bundle,
    ) -> Result<graph::Compiled, Error> {
        let env = self.env(project_id).await?;
        let profile_errors = check_profiles(bundle);
        match graph::compile(bundle, &env) {
            Ok(c) if profile_errors.is_empty() => Ok(c),
            Ok(_) => Err(Error::InvalidDefinition(profile_errors)),
            Err(mut errors) => {
                errors.extend(profile_errors);
                Err(Error::InvalidDefinition(errors))
            }
        }
    }

    /// What a bundle may refer to in its project.
    async fn env(&self, project_id: &str) -> Result<Env, Error> {
        let store = &self.store;
        Ok(Env {
            artifact_types: store
                .artifact_types(project_id)
                .await?
                .into_iter()
                .map(|a| (a.name, (a.version, a.schema)))
                .collect(),
            workflows: store
                .workflow_names(project_id)
                .await?
                .into_iter()
                .collect(),
        })
    }

    /// A stored version by row id (loaded once, then cached: a version never
    /// changes). Rows that do not decode are `InvalidDefinition`.
    pub(crate) async fn stored_def(&self, def_id: &str) -> Result<Arc<StoredDef>, Error> {
        if let Some(d) = self.defs.lock().expect("defs lock").get(def_id) {
            return Ok(d.clone());
        }
        let def = self
            .store
            .get_def_by_id(def_id)
            .await
            .map_err(bad_definition)?
            .ok_or_else(|| {
                Error::NotFound(format!("definition version `{def_id}` does not exist"))
            })?;
        let def = Arc::new(def);
        self.defs
            .lock()
            .expect("defs lock")
            .insert(def_id.to_string(), def.clone());
        Ok(def)
    }

    /// The compiled graph of a stored version (compiled once, then cached).
    pub(crate) async fn graph(&self, def_id: &str) -> Result<Arc<Graph>, Error> {
        if let Some(g) = self.graphs.lock().expect("graphs lock").get(def_id) {
            return Ok(g.clone());
        }
        let def = self.stored_def(def_id).await?;
        let compiled = self.compile_checked(&def.project_id, &def.bundle).await?;
        let g = Arc::new(compiled.graph);
        self.graphs
            .lock()
            .expect("graphs lock")
            .insert(def_id.to_string(), g.clone());
        Ok(g)
    }

    /// Keeps the graph compiled when the version was saved, so its first
    /// run needs no second compilation.
    pub(crate) fn remember_graph(&self, def_id: &str, graph: impl Into<Arc<Graph>>) {
        self.graphs
            .lock()
            .expect("graphs lock")
            .entry(def_id.to_string())
            .or_insert_with(|| graph.into());
    }
}

/// Stored rows that do not decode are reported like a validation failure (422).
fn bad_definition(e: braid_store::Error) -> Error {
    match e {
        braid_store::Error::BadDefinition(message) => {
            Error::InvalidDefinition(vec![DefinitionError {
                kind: "workflow".into(),
                ref_: String::new(),
                field: String::new(),
                message,
            }])
        }
        other => Error::Store(other),
    }
}

/// Checks of model profiles that need the provider layer: the `scripted`
/// script's shape and the types of `parameters`.
fn check_profiles(bundle: &Bundle) -> Vec<DefinitionError> {
    let mut errors = Vec::new();
    let mut err = |r: &str, field: &str, message: String| {
        errors.push(DefinitionError {
            kind: "model_profile".into(),
            ref_: r.into(),
            field: field.into(),
            message,
        })
    };
    for m in &bundle.model_profiles {
        if m.provider == "scripted"
            && let Some(script) = &m.script
            && let Err(e) = braid_llm::validate_script(script)
        {
            err(&m.ref_, "script", e);
        }
        for key in m.parameters.keys() {
            if !["temperature", "max_tokens", "top_p", "stop"].contains(&key.as_str()) {
                err(
                    &m.ref_,
                    &format!("parameters.{key}"),
                    format!(
                        "unknown parameter `{key}`: use temperature, max_tokens, top_p or stop"
                    ),
                );
            }
        }
        if let Err(e) =
            serde_json::from_value::<braid_llm::Parameters>(Value::Object(m.parameters.clone()))
        {
            err(&m.ref_, "parameters", format!("invalid parameters: {e}"));
        }
    }
    errors
}
