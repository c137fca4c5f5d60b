//! PostgreSQL URLs as users write them (`postgres://user:password@host:port/db?…`):
//! shown with the password hidden, and pointed at another database of the
//! same server. Shared by `braid serve`, `braid config`, the tests' and the
//! benchmarks' database per case.

/// A URL with its password (and any `password=` parameter) replaced by
/// `****`; anything that is not a URL is masked whole.
pub fn mask(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "****".to_string();
    };
    // The user info ends at the last '@' before the query: a password may
    // itself hold '@' or '/', and masking too much is the safe mistake.
    let before_query = rest.find('?').unwrap_or(rest.len());
    let (user_info, tail) = match rest[..before_query].rfind('@') {
        Some(at) => {
            let (user_info, host_and_tail) = rest.split_at(at);
            let user = match user_info.split_once(':') {
                Some((user, _password)) => format!("{user}:****"),
                None => user_info.to_string(),
            };
            (user, host_and_tail)
        }
        None => (String::new(), rest),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}=****")
                    }
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{user_info}{tail}")
}

/// `url` with its database replaced by `database` (query kept).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    // After the scheme's `//`, the first `/` starts the database name.
    let authority_start = base.find("//").map_or(0, |i| i + 2);
    let root = match base[authority_start..].find('/') {
        Some(i) => &base[..authority_start + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    }
}

#[cfg(test)]
mod tests {
    use super::{mask, with_database};

    #[test]
    fn the_database_of_a_url_is_replaced_and_its_query_kept() {
        assert_eq!(
            with_database("postgresql://braid@127.0.0.1:5432/braid_test", "x"),
            "postgresql://braid@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:1", "x"), "postgres://h:1/x");
    }

    #[test]
    fn mask_hides_passwords_and_keeps_the_rest() {
        assert_eq!(
            mask("postgres://braid:s3cret@db.internal:5432/braid?sslmode=require"),
            "postgres://braid:****@db.internal:5432/braid?sslmode=require"
        );
        assert_eq!(
            mask("postgres://db/braid?user=u&password=s3cret"),
            "postgres://db/braid?user=u&password=****"
        );
        assert_eq!(
            mask("postgres://braid@db/braid"),
            "postgres://braid@db/braid"
        );
        // A password containing '@' or '/' before the host.
        assert_eq!(mask("postgres://u:p@ss@db/x"), "postgres://u:****@db/x");
        assert_eq!(mask("postgres://u:p/ss@db/x"), "postgres://u:****@db/x");
        assert_eq!(mask("not a url s3cret"), "****");
    }
}
