/* recsys--1.3.sql: the SQL surface of recsys 1.3 */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION recsys" to load this file. \quit
