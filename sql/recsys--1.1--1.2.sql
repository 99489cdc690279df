/* recsys--1.1--1.2.sql: upgrade a recsys 1.1 database to 1.2 (ALTER EXTENSION recsys UPDATE) */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION recsys UPDATE TO '1.2'" to load this file. \quit
