//! `stathook user …`: the web app's accounts, as requests to the admin API. A password
//! comes from standard input (`--password-stdin`) or is made here and printed once, after
//! the server has taken it.

use super::{enc, manage, print_json, request, s, time};
use crate::cli::{Remote, RoleArg, UserCommand};
use hyper::Method;
use serde_json::json;

pub fn user(remote: &Remote, cmd: UserCommand) -> Result<(), String> {
    match cmd {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .map_err(|e| format!("could not read the password from stdin: {e}"))?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            } else {
                // 20 hex digits: 80 bits, plenty for a password that argon2 guards.
                crate::auth::new_secret("")[..20].to_owned()
            };
            let role = match role {
                RoleArg::Admin => "admin",
                RoleArg::Viewer => "viewer",
            };
            let body = json!({"name": name, "role": role, "password": password});
            let v = request(remote, None, Method::POST, "/api/v1/users", Some(body))?;
            println!("User: {} ({})", s(&v["name"]), s(&v["role"]));
            if !password_stdin {
                println!("Password: {password}");
                eprintln!("(copy the password now: it is not shown again)");
            }
            Ok(())
        }
        UserCommand::List => manage(
            remote,
            (Method::GET, "/api/v1/users".to_owned(), None, |v| {
                println!("{:<24} {:<8} CREATED", "NAME", "ROLE");
                for u in v["users"].as_array().into_iter().flatten() {
                    println!(
                        "{:<24} {:<8} {}",
                        s(&u["name"]),
                        s(&u["role"]),
                        time(&u["createdAt"])
                    );
                }
            }),
        ),
        UserCommand::Remove { name } => manage(
            remote,
            (
                Method::DELETE,
                format!("/api/v1/users/{}", enc(&name)),
                None,
                print_json,
            ),
        ),
    }
}
