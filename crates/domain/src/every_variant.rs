//! `one_of_each!`: one value of every variant of an enum, checked by the compiler — how the
//! error enums of every crate give their doors' mapping tests a complete list.

/// Lists one value of every variant of an enum, and fails to compile while the list misses a
/// variant: for tests of a mapping from an error enum in another crate, where
/// `#[non_exhaustive]` hides the variants from a `match` without a wildcard arm.
///
/// Invoke it in the crate that defines the enum (the only one where a `match` on it needs no
/// wildcard), with the type, then one arm per variant: a pattern naming that variant, `=>`, one
/// or more values of it separated by commas, and `;`. It expands to `(arms, values)`: the number
/// of arms and the values in order. The generated `match` over the patterns has no wildcard and
/// denies unreachable patterns, so every variant needs an arm and none may have two; that each
/// arm's values are of its variant is for the defining crate's test to check (the values must
/// fall into as many distinct variants as there are arms).
///
/// ```
/// # use billing_domain::one_of_each;
/// #[derive(Debug)]
/// enum Outcome {
///     Done,
///     Refused(u8),
/// }
/// let (arms, values) = one_of_each!(Outcome;
///     Outcome::Done => Outcome::Done;
///     Outcome::Refused(_) => Outcome::Refused(1), Outcome::Refused(2);
/// );
/// assert_eq!((arms, values.len()), (2, 3));
/// ```
#[macro_export]
macro_rules! one_of_each {
    ($ty:ty; $($pattern:pat => $($value:expr),+;)+) => {{
        #[deny(unreachable_patterns)]
        fn _every_variant_has_one_arm(value: &$ty) {
            match value {
                $($pattern => {})+
            }
        }
        let arms: usize = [$(stringify!($pattern)),+].len();
        (arms, vec![$($($value),+),+])
    }};
}
