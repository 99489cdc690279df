/* recsys--1.2--1.3.sql: upgrade a recsys 1.2 database to 1.3 (ALTER EXTENSION recsys UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION recsys UPDATE TO '1.3'" to load this file. \quit
