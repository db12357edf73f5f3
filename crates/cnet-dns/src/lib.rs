//! Embedded DNS, as Docker's 127.0.0.11: names of containers on user-defined networks answered from
//! a live record table, everything else forwarded to the host's upstream resolvers.
