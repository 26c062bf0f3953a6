//! The contract of users and refresh tokens (`UserRepository`, `RefreshTokenRepository`).

use crate::prelude::*;

pub async fn users_are_found_by_id_and_by_email<U: UnitOfWork>(store: U) {
    let user = user(Role::Customer);
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&user).await, "insert");
    commit(tx).await;
    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.find_user(user.id).await, "find"), Some(user.clone()));
    assert_eq!(expect(tx.find_user_by_email(&user.email).await, "by email"), Some(user.clone()));
    assert_eq!(expect(tx.find_user(id()).await, "unknown"), None);
}

pub async fn an_e_mail_address_belongs_to_one_user<U: UnitOfWork>(store: U) {
    let first = user(Role::Customer);
    let second = domain::user::User { id: id(), ..first.clone() };
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&first).await, "insert");
    commit(tx).await;
    let mut tx = begin(&store).await;
    let duplicate = tx.insert_user(&second).await;
    assert!(
        matches!(duplicate, Err(StoreError::Duplicate(ref name)) if name == "users_email"),
        "{duplicate:?}"
    );
}

pub async fn refresh_tokens_rotate_and_families_revoke<U: UnitOfWork>(store: U) {
    let user = user(Role::Customer);
    let family = id();
    let token = |hash: &str| RefreshToken {
        id: id(),
        user_id: user.id,
        family_id: family,
        token_hash: hash.to_owned(),
        created_at: now(),
        expires_at: now() + Duration::days(1),
        used_at: None,
        revoked_at: None,
    };
    let (first, second) = (token("hash-1"), token("hash-2"));
    let mut tx = begin(&store).await;
    expect(tx.insert_user(&user).await, "user");
    expect(tx.insert_refresh_token(&first).await, "first");
    let used = RefreshToken {
        used_at: Some(now()),
        ..first.clone()
    };
    expect(tx.update_refresh_token(&used).await, "use");
    expect(tx.insert_refresh_token(&second).await, "second");
    assert!(matches!(
        tx.insert_refresh_token(&token("hash-1")).await,
        Err(StoreError::Duplicate(_))
    ));
    commit(tx).await;

    let mut tx = begin(&store).await;
    assert_eq!(expect(tx.lock_refresh_token("hash-1").await, "lock"), Some(used));
    expect(tx.revoke_token_family(family, now()).await, "revoke");
    commit(tx).await;
    let mut tx = begin(&store).await;
    for hash in ["hash-1", "hash-2"] {
        let revoked = expect(tx.lock_refresh_token(hash).await, "lock").and_then(|t| t.revoked_at);
        assert_eq!(revoked, Some(now()), "{hash}");
    }
    assert_eq!(expect(tx.lock_refresh_token("unknown").await, "unknown"), None);
}

pub async fn users_list_newest_first_by_role<U: UnitOfWork>(store: U) {
    // A store shared with other tests may hold more users: these are the newest.
    let later = |role, seconds| domain::user::User {
        created_at: now() + Duration::days(3650) + Duration::seconds(seconds),
        ..user(role)
    };
    let (ann, bob, cat) = (later(Role::Customer, 1), later(Role::Merchant, 2), later(Role::Customer, 3));
    let mut tx = begin(&store).await;
    for u in [&ann, &bob, &cat] {
        expect(tx.insert_user(u).await, "user");
    }
    commit(tx).await;
    let mut tx = begin(&store).await;
    let ids = |page: &Page<domain::user::User>| page.items.iter().map(|u| u.id).collect::<Vec<_>>();
    let everyone = UserFilter::default();
    let all = expect(tx.list_users(&everyone, &PageRequest::first(3)).await, "all");
    assert_eq!(ids(&all), vec![cat.id, bob.id, ann.id], "newest first");
    let customers = UserFilter {
        role: Some(Role::Customer),
        ..UserFilter::default()
    };
    let first = expect(tx.list_users(&customers, &PageRequest::first(1)).await, "customers");
    assert_eq!(ids(&first), vec![cat.id]);
    let next = PageRequest {
        limit: 1,
        after: first.next_cursor,
    };
    let more = expect(tx.list_users(&customers, &next).await, "next");
    assert_eq!(ids(&more), vec![ann.id], "the merchant is not a customer");
    expect(tx.set_user_suspended(ann.id, Some(now())).await, "suspend");
    let suspended = UserFilter {
        suspended: Some(true),
        ..UserFilter::default()
    };
    assert_eq!(
        ids(&expect(tx.list_users(&suspended, &PageRequest::first(5)).await, "suspended")),
        vec![ann.id]
    );
    let active_customers = UserFilter {
        suspended: Some(false),
        ..customers.clone()
    };
    assert_eq!(
        ids(&expect(tx.list_users(&active_customers, &PageRequest::first(5)).await, "active")),
        vec![cat.id]
    );
    let by_email = UserFilter {
        email: Some(bob.email.clone()),
        ..UserFilter::default()
    };
    assert_eq!(
        ids(&expect(tx.list_users(&by_email, &PageRequest::first(5)).await, "email")),
        vec![bob.id]
    );
    let registered = UserFilter {
        created: CreatedWithin {
            from: Some(bob.created_at),
            to: Some(cat.created_at),
        },
        ..UserFilter::default()
    };
    assert_eq!(
        ids(&expect(tx.list_users(&registered, &PageRequest::first(5)).await, "period")),
        vec![bob.id]
    );
}
