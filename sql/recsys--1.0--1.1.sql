/* recsys--1.0--1.1.sql: upgrade a recsys 1.0 database to 1.1 (ALTER EXTENSION recsys UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION recsys UPDATE TO '1.1'" to load this file. \quit
